//! `show`, `status`, `verify` and `unlock`: the read-mostly commands.

use std::collections::BTreeMap;

use anyhow::Context as _;
use std::io::Write as _;
use std::sync::Arc;

use super::plan::{default_redaction, print_plan};
use super::{Refused, base_url, client, load_token};
use crate::cli::{
    PurgeArgs, ReportArgs, ReportFormat, ShowArgs, StatusArgs, StatusFormat, UnlockArgs, VerifyArgs,
};
use crate::exit::Exit;
use crate::model::{Identifier, Lookup};
use crate::plan::Resolution;
use crate::render::{self, Redaction, StatusView};
use crate::state::{ItemFilter, ItemState, State, StoredItem};

/// `idprune show STATE`.
pub fn show(args: &ShowArgs) -> anyhow::Result<Exit> {
    let state = State::open(&args.state)?;
    print_plan(
        &state,
        args.format,
        default_redaction(args.format, args.redact.is_some(), args.reveal),
        args.redact,
    )?;
    Ok(Exit::Success)
}

/// `idprune status STATE`.
pub fn status(args: &StatusArgs) -> anyhow::Result<Exit> {
    let state = State::open(&args.state)?;
    let view = StatusView {
        meta: state.meta()?,
        counts: state.counts()?,
        lock: state.lock_holder()?,
        last_errors: state.last_errors(5)?,
        runs: state.runs()?,
        state: &state,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match args.format {
        StatusFormat::Text => render::status_text(&view, &mut out)?,
        StatusFormat::Json => render::status_json(&view, Redaction(!args.reveal), &mut out)?,
    }
    out.flush()?;
    Ok(Exit::Success)
}

/// `idprune report STATE --downstream | --sql`.
pub fn report(args: &ReportArgs) -> anyhow::Result<Exit> {
    let state = State::open(&args.state)?;
    let items = |f: &mut dyn FnMut(StoredItem) -> anyhow::Result<()>| {
        state.for_each_item_in(ItemFilter::All, u64::MAX, f)
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
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
pub fn purge(args: &PurgeArgs) -> anyhow::Result<Exit> {
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
    println!(
        "Purged `{}`: {} items now hold keyed fingerprints instead of identifier values; outcomes and runs are kept.",
        args.state.display(),
        render::thousands(n)
    );
    Ok(Exit::Success)
}

/// `idprune unlock STATE LOCK_ID`.
pub fn unlock(args: &UnlockArgs) -> anyhow::Result<Exit> {
    let state = State::open(&args.state)?;
    let holder = state
        .unlock(&args.lock_id)
        .map_err(|e| Refused(e.to_string()))?;
    println!("Broke the lock held by {holder}.");
    Ok(Exit::Success)
}

/// `idprune verify STATE`: re-reads every profile an applied item touched.
pub async fn verify(args: &VerifyArgs) -> anyhow::Result<Exit> {
    let state = State::open(&args.state)?;
    if state.purged_at()?.is_some() {
        anyhow::bail!(
            "state file `{}` was purged: its identifiers are fingerprints and cannot be re-read",
            args.state.display()
        );
    }
    let meta = state.meta()?;
    let base = base_url(&args.api, super::region_url(&meta.region))?;
    let token = load_token(&args.api)?;
    let api = Arc::new(client(&base, &meta.space, token, &args.pace)?);
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
    let mut window = crate::window::Window::new(args.pace.concurrency as usize);
    let pacer = Some(api.pacer().clone());
    let resolved = crate::resolve::resolve_all(api, lookups, &mut window, pacer, |_| {}).await?;
    let r = Redaction(args.redact);
    let mut present = 0u64;
    let mut checked = 0u64;
    for (uid, items) in &removed {
        let lookup = Lookup::External(Identifier::new(crate::model::USER_ID, uid.clone()));
        let Some(Resolution::Found(ids)) = resolved.get(&lookup) else {
            continue;
        };
        for (seq, ident) in items {
            checked += 1;
            if ids.contains(ident) {
                present += 1;
                println!(
                    "#{seq} still present: {}:{} on profile user_id:{}",
                    render::clean(&ident.kind),
                    if r.0 {
                        render::REDACTED.to_owned()
                    } else {
                        render::clean(&ident.id)
                    },
                    if r.0 {
                        render::REDACTED.to_owned()
                    } else {
                        render::clean(uid)
                    },
                );
            }
        }
    }
    println!(
        "Verified {} removed identifiers on {} profiles: {} still present.",
        render::thousands(checked),
        render::thousands(removed.len() as u64),
        render::thousands(present)
    );
    if present > 0 {
        eprintln!(
            "Segment's profile storage can lag up to about 5 minutes behind a delete; if it is sooner, verify again later. An identifier that stays or returns was re-added by live events or a replay."
        );
        return Ok(Exit::Changes);
    }
    Ok(Exit::Success)
}
