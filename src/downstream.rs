//! The downstream lists: the identifiers the API confirmed removed, for the clean-up Segment
//! leaves to its users (see `docs/ARCHITECTURE.md`), written into any `impl Write` as CSV or
//! JSON by `idprune report`. The [`Items`] stream and the [`removed`] filter are shared with
//! [`crate::warehouse`], which writes the warehouse queries over the same items. Values are
//! shown: these lists are for the operator doing the clean-up, not for a pull request. CSV
//! cells starting with `=`, `+`, `-`, `@`, a tab or a carriage return get a leading `'` so a
//! spreadsheet shows them rather than running them (OWASP, *CSV Injection*).

use std::io::Write;

use serde_json::json;

use crate::results::formula_safe;
use crate::state::{ItemState, StoredItem};

/// A stream of items: a writer calls it once with a sink that takes each item in turn
/// (`State::for_each_item_in` in the command layer, a vector in tests).
pub trait Items:
    FnOnce(&mut dyn FnMut(StoredItem) -> anyhow::Result<()>) -> anyhow::Result<()>
{
}
impl<F: FnOnce(&mut dyn FnMut(StoredItem) -> anyhow::Result<()>) -> anyhow::Result<()>> Items
    for F
{
}

/// Items the lists and queries name: those the API confirmed gone (`done`, `already_absent`).
pub fn removed(item: &StoredItem) -> bool {
    matches!(
        item.journal.state,
        ItemState::Done | ItemState::AlreadyAbsent
    )
}

/// Writes `seq,user_id,type,id,state` rows with a header, CSV-quoted; a cell a spreadsheet
/// would run as a formula gets a leading `'` ([`crate::results::formula_safe`]).
pub fn write_csv(items: impl Items, out: impl Write) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(["seq", "user_id", "type", "id", "state"])?;
    items(&mut |s| {
        if removed(&s) {
            w.write_record([
                s.item.seq.to_string().as_str(),
                &formula_safe(s.item.user_id.as_deref().unwrap_or("")),
                &formula_safe(&s.item.identifier.kind),
                &formula_safe(&s.item.identifier.id),
                s.journal.state.as_str(),
            ])?;
        }
        Ok(())
    })?;
    w.flush()?;
    Ok(())
}

/// Writes one JSON object `{"removed": [{seq, user_id, type, id, state}, ...]}`, a row a line.
pub fn write_json(items: impl Items, mut out: impl Write) -> anyhow::Result<()> {
    write!(out, "{{\"removed\": [")?;
    let mut first = true;
    items(&mut |s| {
        if removed(&s) {
            let row = json!({"seq": s.item.seq, "user_id": s.item.user_id, "type": s.item.identifier.kind,
                             "id": s.item.identifier.id, "state": s.journal.state.as_str()});
            write!(out, "{}\n  {row}", if first { "" } else { "," })?;
            first = false;
        }
        Ok(())
    })?;
    writeln!(out, "{}]}}", if first { "" } else { "\n" })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::testing::stored_item as item;

    #[test]
    fn csv_lists_removed_only() {
        let items = vec![
            item(1, "a,b@x.com", ItemState::Done),
            item(2, "c@x.com", ItemState::Pending),
        ];
        let mut out = Vec::new();
        write_csv(|f| items.into_iter().try_for_each(f), &mut out).expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "seq,user_id,type,id,state\n1,u1,email,\"a,b@x.com\",done\n"
        );
    }

    #[test]
    fn csv_neutralises_formula_cells() {
        let mut it = item(1, "=cmd|' /C calc'!A0", ItemState::Done);
        it.item.user_id = Some("@u1".into());
        let mut out = Vec::new();
        write_csv(|f| std::iter::once(it).try_for_each(f), &mut out).expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "seq,user_id,type,id,state\n1,'@u1,email,'=cmd|' /C calc'!A0,done\n"
        );
    }
}
