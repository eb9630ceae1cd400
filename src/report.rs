//! Reports for the work Segment leaves to its users (DESIGN.md §8), written into any
//! `impl Write`: the removed identifiers for downstream clean-up (CSV or JSON), and a warehouse
//! query that checks Profiles Sync received a `REMOVED` row for each of them. Values are shown:
//! these reports are for the operator doing the clean-up, not for a pull request.

use std::io::Write;

use serde_json::json;

use crate::state::{ItemState, StoredItem};

/// A stream of items: the report calls it once with a sink that takes each item in turn
/// (`State::for_each_item_in` in the command layer, a vector in tests).
pub trait Items:
    FnOnce(&mut dyn FnMut(StoredItem) -> anyhow::Result<()>) -> anyhow::Result<()>
{
}
impl<F: FnOnce(&mut dyn FnMut(StoredItem) -> anyhow::Result<()>) -> anyhow::Result<()>> Items
    for F
{
}

/// Items a report lists: those the API confirmed gone (`done`, `already_absent`).
pub fn removed(item: &StoredItem) -> bool {
    matches!(item.state, ItemState::Done | ItemState::AlreadyAbsent)
}

/// Writes `seq,user_id,type,id,state` rows with a header, CSV-quoted.
pub fn downstream_csv(items: impl Items, out: impl Write) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(["seq", "user_id", "type", "id", "state"])?;
    items(&mut |s| {
        if removed(&s) {
            w.write_record([
                s.item.seq.to_string().as_str(),
                s.item.user_id.as_deref().unwrap_or(""),
                &s.item.identifier.kind,
                &s.item.identifier.id,
                s.state.as_str(),
            ])?;
        }
        Ok(())
    })?;
    w.flush()?;
    Ok(())
}

/// Writes one JSON object `{"removed": [{seq, user_id, type, id, state}, ...]}`, a row a line.
pub fn downstream_json(items: impl Items, mut out: impl Write) -> anyhow::Result<()> {
    write!(out, "{{\"removed\": [")?;
    let mut first = true;
    items(&mut |s| {
        if removed(&s) {
            let row = json!({"seq": s.item.seq, "user_id": s.item.user_id, "type": s.item.identifier.kind,
                             "id": s.item.identifier.id, "state": s.state.as_str()});
            write!(out, "{}\n  {row}", if first { "" } else { "," })?;
            first = false;
        }
        Ok(())
    })?;
    writeln!(out, "{}]}}", if first { "" } else { "\n" })?;
    Ok(())
}

/// A SQL string literal: single quotes doubled.
fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Writes a portable warehouse query listing removed identifiers that have no `REMOVED` row in
/// Profiles Sync's `external_id_mapping_updates` yet (an empty result means all arrived).
pub fn profiles_sync_sql(
    items: impl Items,
    schema: &str,
    mut out: impl Write,
) -> anyhow::Result<()> {
    writeln!(
        out,
        "-- idprune: identifiers removed from Unify that Profiles Sync has not yet marked REMOVED."
    )?;
    writeln!(
        out,
        "-- Needs the `__operation` column on external_id_mapping_updates. Empty result: all arrived."
    )?;
    let mut first = true;
    items(&mut |s| {
        if removed(&s) {
            let row = format!(
                "SELECT {} AS id_type, {} AS id_value",
                literal(&s.item.identifier.kind),
                literal(&s.item.identifier.id)
            );
            if first {
                write!(out, "WITH removed AS (\n  {row}")?;
            } else {
                write!(out, "\n  UNION ALL {row}")?;
            }
            first = false;
        }
        Ok(())
    })?;
    if first {
        writeln!(out, "-- No identifiers were removed yet.")?;
        return Ok(());
    }
    writeln!(out, "\n)\nSELECT r.id_type, r.id_value\nFROM removed r")?;
    writeln!(out, "LEFT JOIN {schema}.external_id_mapping_updates u")?;
    writeln!(
        out,
        "  ON u.external_id_type = r.id_type AND u.external_id_value = r.id_value AND u.__operation = 'REMOVED'"
    )?;
    writeln!(out, "WHERE u.external_id_value IS NULL;")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Identifier;
    use crate::plan::{Action, Item};

    fn item(seq: u64, id: &str, state: ItemState) -> StoredItem {
        StoredItem {
            item: Item {
                seq,
                lookup: "user_id:u1".into(),
                profile: Some("user_id:u1".into()),
                user_id: Some("u1".into()),
                identifier: Identifier::new("email", id),
                action: Action::Delete,
                note: None,
                origin: "m.yaml:1:1".into(),
            },
            state,
            attempts: 1,
            failure: None,
            last_error: None,
            last_status: Some(200),
            request_id: None,
        }
    }

    #[test]
    fn sql_quotes_and_filters() {
        let items = vec![
            item(1, "o'brien@x.com", ItemState::Done),
            item(2, "b@x.com", ItemState::Failed),
        ];
        let mut out = Vec::new();
        profiles_sync_sql(|f| items.into_iter().try_for_each(f), "ps", &mut out).expect("write");
        let sql = String::from_utf8(out).expect("utf8");
        assert!(sql.contains("'o''brien@x.com'"));
        assert!(!sql.contains("b@x.com"));
        assert!(sql.contains("ps.external_id_mapping_updates"));
    }

    #[test]
    fn csv_lists_removed_only() {
        let items = vec![
            item(1, "a,b@x.com", ItemState::Done),
            item(2, "c@x.com", ItemState::Pending),
        ];
        let mut out = Vec::new();
        downstream_csv(|f| items.into_iter().try_for_each(f), &mut out).expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "seq,user_id,type,id,state\n1,u1,email,\"a,b@x.com\",done\n"
        );
    }
}
