//! Reports for the work Segment leaves to its users (DESIGN.md §8), written into any
//! `impl Write`: the removed identifiers for downstream clean-up (CSV or JSON), and a warehouse
//! query that checks Profiles Sync received a `REMOVED` row for each of them. Values are shown:
//! these reports are for the operator doing the clean-up, not for a pull request.

use std::io::{self, Write};

use serde_json::json;

use crate::state::{ItemState, StoredItem};

/// Items a report lists: those the API confirmed gone (`done`, `already_absent`).
pub fn removed(item: &StoredItem) -> bool {
    matches!(item.state, ItemState::Done | ItemState::AlreadyAbsent)
}

/// Writes `seq,user_id,type,id,state` rows with a header, CSV-quoted.
pub fn downstream_csv(items: &[StoredItem], out: impl Write) -> io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(["seq", "user_id", "type", "id", "state"])?;
    for s in items.iter().filter(|s| removed(s)) {
        w.write_record([
            s.item.seq.to_string().as_str(),
            s.item.user_id.as_deref().unwrap_or(""),
            &s.item.identifier.kind,
            &s.item.identifier.id,
            s.state.as_str(),
        ])?;
    }
    w.flush()
}

/// Writes one JSON object `{"removed": [{seq, user_id, type, id, state}, ...]}`.
pub fn downstream_json(items: &[StoredItem], mut out: impl Write) -> io::Result<()> {
    let rows: Vec<_> = items
        .iter()
        .filter(|s| removed(s))
        .map(|s| {
            json!({"seq": s.item.seq, "user_id": s.item.user_id, "type": s.item.identifier.kind,
                   "id": s.item.identifier.id, "state": s.state.as_str()})
        })
        .collect();
    serde_json::to_writer_pretty(&mut out, &json!({ "removed": rows }))?;
    writeln!(out)
}

/// A SQL string literal: single quotes doubled.
fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Writes a portable warehouse query listing removed identifiers that have no `REMOVED` row in
/// Profiles Sync's `external_id_mapping_updates` yet (an empty result means all arrived).
pub fn profiles_sync_sql(
    items: &[StoredItem],
    schema: &str,
    mut out: impl Write,
) -> io::Result<()> {
    writeln!(
        out,
        "-- idprune: identifiers removed from Unify that Profiles Sync has not yet marked REMOVED."
    )?;
    writeln!(
        out,
        "-- Needs the `__operation` column on external_id_mapping_updates. Empty result: all arrived."
    )?;
    let rows: Vec<String> = items
        .iter()
        .filter(|s| removed(s))
        .map(|s| {
            format!(
                "SELECT {} AS id_type, {} AS id_value",
                literal(&s.item.identifier.kind),
                literal(&s.item.identifier.id)
            )
        })
        .collect();
    if rows.is_empty() {
        return writeln!(out, "-- No identifiers were removed yet.");
    }
    writeln!(
        out,
        "WITH removed AS (\n  {}\n)",
        rows.join("\n  UNION ALL ")
    )?;
    writeln!(out, "SELECT r.id_type, r.id_value\nFROM removed r")?;
    writeln!(out, "LEFT JOIN {schema}.external_id_mapping_updates u")?;
    writeln!(
        out,
        "  ON u.external_id_type = r.id_type AND u.external_id_value = r.id_value AND u.__operation = 'REMOVED'"
    )?;
    writeln!(out, "WHERE u.external_id_value IS NULL;")
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
        profiles_sync_sql(&items, "ps", &mut out).expect("write");
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
        downstream_csv(&items, &mut out).expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "seq,user_id,type,id,state\n1,u1,email,\"a,b@x.com\",done\n"
        );
    }
}
