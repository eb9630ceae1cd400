//! The commands that take a finished or sealed state file: `show`, `status`, `report` and
//! `verify` read it (verify also re-reads profiles from Segment); `purge` and `unlock` change it.

use std::collections::BTreeMap;

use anyhow::Context as _;
use std::io::Write as _;
use std::sync::Arc;

use super::plan::{default_redaction, print_plan, render_count};
use super::{Api, Refused, Ui, sniff};
use crate::cli::{
    OutputFormat, PurgeArgs, ReportArgs, ReportFormat, ShowArgs, StatusArgs, StatusFormat,
    UnlockArgs, VerifyArgs,
};
use crate::exit::Exit;
use crate::model::{Identifier, Lookup};
use crate::plan::Resolution;
use crate::render::{self, Redaction, StatusView};
use crate::state::{ItemFilter, ItemState, State, StoredItem};

/// `idprune show STATE`.
pub fn show(args: &ShowArgs, ui: &Ui) -> anyhow::Result<Exit> {
    sniff::expect_state(&args.state, "show")?;
    let state = State::open(&args.state)?;
    print_plan(
        &state,
        args.format,
        default_redaction(args.format, args.redact.is_some(), args.reveal),
        args.redact,
        ui,
    )?;
    Ok(Exit::Success)
}

/// `idprune status STATE`.
pub fn status(args: &StatusArgs, ui: &Ui) -> anyhow::Result<Exit> {
    sniff::expect_state(&args.state, "status")?;
    let state = State::open(&args.state)?;
    let view = StatusView {
        meta: state.meta()?,
        counts: state.counts()?,
        lock: state.lock_holder()?,
        last_errors: state.last_errors(5)?,
        runs: state.runs()?,
        state: &state,
    };
    let color = ui.color && args.format == StatusFormat::Text;
    let mut out = super::ui::Colored::new(std::io::BufWriter::new(super::ui::stdout()), color);
    match args.format {
        StatusFormat::Text => render::status_text(&view, &mut out)?,
        StatusFormat::Json => render::status_json(&view, Redaction(!args.reveal), &mut out)?,
    }
    out.flush()?;
    Ok(Exit::Success)
}

/// `idprune report STATE --downstream | --sql`.
pub fn report(args: &ReportArgs, _ui: &Ui) -> anyhow::Result<Exit> {
    sniff::expect_state(&args.state, "report")?;
    let state = State::open(&args.state)?;
    let items = |f: &mut dyn FnMut(StoredItem) -> anyhow::Result<()>| {
        state.for_each_item_in(ItemFilter::All, u64::MAX, f)
    };
    let mut out = std::io::BufWriter::new(super::ui::stdout());
    if args.sql {
        let schema_ok = !args.schema.is_empty()
            && args
                .schema
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.'));
        if !schema_ok {
            anyhow::bail!(
                "--schema `{}` may only hold letters, digits, `_` and `.`",
                render::clean(&args.schema)
            );
        }
        crate::report::profiles_sync_sql(items, &args.schema, &mut out)?;
    } else {
        match args.format {
            ReportFormat::Csv => crate::report::downstream_csv(items, &mut out)?,
            ReportFormat::Json => crate::report::downstream_json(items, &mut out)?,
        }
    }
    out.flush()?;
    Ok(Exit::Success)
}

/// `idprune purge STATE`.
pub fn purge(args: &PurgeArgs, ui: &Ui) -> anyhow::Result<Exit> {
    sniff::expect_state(&args.state, "purge")?;
    let key = match &args.key_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading key file `{}`", path.display()))?,
        None => std::env::var(super::FINGERPRINT_KEY_ENV).unwrap_or_default(),
    };
    let key = key.trim();
    if key.is_empty() {
        anyhow::bail!(
            "no fingerprint key: set {} or pass --key-file PATH (keep the key: it is what lets an audit check an identifier later)",
            super::FINGERPRINT_KEY_ENV
        );
    }
    let mut state = State::open(&args.state)?;
    if let Some(holder) = state.lock_holder()?.filter(|h| !h.is_stale()) {
        return Err(Refused(format!(
            "state file `{}` is locked by {holder}",
            args.state.display()
        ))
        .into());
    }
    let n = state.purge(key.as_bytes())?;
    ui.say(format!(
        "Purged `{}`: {} now {} keyed fingerprints instead of identifier values; outcomes and runs are kept.",
        args.state.display(),
        render_count(n, "item", "items"),
        if n == 1 { "holds" } else { "hold" }
    ))?;
    Ok(Exit::Success)
}

/// `idprune unlock STATE LOCK_ID`.
pub fn unlock(args: &UnlockArgs, ui: &Ui) -> anyhow::Result<Exit> {
    sniff::expect_state(&args.state, "unlock")?;
    let state = State::open(&args.state)?;
    let holder = state
        .unlock(&args.lock_id)
        .map_err(|e| Refused(e.to_string()))?;
    ui.say(format!("Broke the lock held by {holder}."))?;
    Ok(Exit::Success)
}

/// The version of `verify --format json`'s object (minor: additive; major: breaking).
pub const VERIFY_JSON_VERSION: &str = "1.0";

/// What `verify` found for one removed identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    /// Gone from its profile.
    Gone,
    /// Still on its profile.
    Present,
    /// Its profile was not found (merged away or deleted): nothing left to hold it.
    ProfileGone,
}

impl Check {
    fn as_str(self) -> &'static str {
        match self {
            Self::Gone => "gone",
            Self::Present => "present",
            Self::ProfileGone => "profile_not_found",
        }
    }
}

/// `idprune verify STATE`: re-reads every profile an applied item touched.
pub async fn verify(args: &VerifyArgs, api: &Api, ui: &Ui) -> anyhow::Result<Exit> {
    sniff::expect_state(&args.state, "verify")?;
    let state = State::open(&args.state)?;
    if state.purged_at()?.is_some() {
        anyhow::bail!(
            "state file `{}` was purged: its identifiers are fingerprints and cannot be re-read",
            args.state.display()
        );
    }
    let meta = state.meta()?;
    let base = api.base_url(super::state_region(&meta)?)?;
    let concurrency = api.pace.concurrency as usize;
    let client = Arc::new(api.client(&base, &meta.space)?);
    // user_id → the identifiers removed from that profile.
    let mut removed: BTreeMap<String, Vec<(u64, Identifier)>> = BTreeMap::new();
    state.for_each_item(|s| {
        if let (ItemState::Done | ItemState::AlreadyAbsent, Some(uid)) = (s.state, &s.item.user_id)
        {
            removed
                .entry(uid.clone())
                .or_default()
                .push((s.item.seq, s.item.identifier));
        }
        Ok(())
    })?;
    let lookups: Vec<Lookup> = removed
        .keys()
        .map(|uid| Lookup::External(Identifier::new(crate::model::USER_ID, uid.clone())))
        .collect();
    let resolved = crate::resolve::resolve_all(client, lookups, concurrency, |_| {})
        .await
        .context("re-reading the touched profiles")?;
    let json = args.format == OutputFormat::Json;
    let r = Redaction(if json { !args.reveal } else { args.redact });
    let mut present = 0u64;
    let mut checked = 0u64;
    let mut items = Vec::new();
    for (uid, ids) in &removed {
        let lookup = Lookup::External(Identifier::new(crate::model::USER_ID, uid.clone()));
        let found = match resolved.get(&lookup) {
            Some(Resolution::Found(found)) => Some(found),
            _ => None,
        };
        for (seq, ident) in ids {
            let check = match found {
                Some(found) if found.contains(ident) => Check::Present,
                Some(_) => Check::Gone,
                None => Check::ProfileGone,
            };
            if check != Check::ProfileGone {
                checked += 1;
            }
            let value = |v: &str| {
                if r.0 {
                    render::REDACTED.to_owned()
                } else {
                    v.to_owned()
                }
            };
            if check == Check::Present {
                present += 1;
                if !json {
                    ui.out(format!(
                        "#{seq} still present: {}:{} on profile user_id:{}",
                        render::clean(&ident.kind),
                        render::clean(&value(&ident.id)),
                        render::clean(&value(uid)),
                    ))?;
                }
            }
            if json {
                items.push(serde_json::json!({
                    "seq": seq,
                    "user_id": value(uid),
                    "identifier": {"type": ident.kind, "id": value(&ident.id)},
                    "result": check.as_str(),
                }));
            }
        }
    }
    if json {
        items.sort_by_key(|v| v["seq"].as_u64());
        ui.out(serde_json::json!({
            "format_version": VERIFY_JSON_VERSION,
            "digest": meta.digest,
            "space": meta.space,
            "checked": checked,
            "profiles": removed.len(),
            "present": present,
            "items": items,
        }))?;
    } else {
        ui.say(format!(
            "Verified {} on {}: {} still present.",
            render_count(checked, "removed identifier", "removed identifiers"),
            render_count(removed.len() as u64, "profile", "profiles"),
            render::thousands(present)
        ))?;
    }
    if present > 0 {
        ui.note(
            "Segment's profile storage can lag up to about 5 minutes behind a delete; if it is sooner, verify again later. An identifier that stays or returns was re-added by live events or a replay.",
        );
        return Ok(Exit::Changes);
    }
    Ok(Exit::Success)
}
