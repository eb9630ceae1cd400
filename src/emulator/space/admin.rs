//! The JSON bodies of the read-only test endpoints: `GET /__emulator/profiles` (every profile's
//! current identifiers, serialised straight from the space without a copy),
//! `GET /__emulator/stats` and `GET /__emulator/arrivals`.

use serde::Serialize;
use serde::ser::{SerializeStruct as _, Serializer};

use super::Space;
use super::profiles::Profile;

impl Space {
    /// The body of `GET /__emulator/profiles`: the current identifiers of every profile,
    /// ignoring the propagation window.
    pub fn profiles_json(&self) -> Vec<u8> {
        serde_json::to_vec(&Snapshot(self)).expect("the snapshot holds only strings")
    }

    /// The body of `GET /__emulator/arrivals`.
    pub fn arrivals_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.stats.arrivals).expect("arrivals hold only numbers")
    }

    /// The body of `GET /__emulator/stats`.
    pub fn stats_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.stats).expect("stats hold only strings and numbers")
    }
}

/// Serialises the space for `/__emulator/profiles` without building a copy of it.
struct Snapshot<'a>(&'a Space);

impl Serialize for Snapshot<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Snapshot", 2)?;
        st.serialize_field("space", &self.0.space_id)?;
        st.serialize_field("profiles", &ProfileList(&self.0.profiles))?;
        st.end()
    }
}

struct ProfileList<'a>(&'a [Profile]);

impl Serialize for ProfileList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(SnapshotProfile))
    }
}

struct SnapshotProfile<'a>(&'a Profile);

impl Serialize for SnapshotProfile<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Profile", 2)?;
        st.serialize_field("segment_id", &*self.0.segment_id)?;
        let live: Vec<&str> = self
            .0
            .entries
            .iter()
            .filter(|e| e.live())
            .map(|e| &*e.key)
            .collect();
        st.serialize_field("identifiers", &live)?;
        st.end()
    }
}
