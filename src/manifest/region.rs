//! The Segment region that hosts a space ([`Region`]): its manifest spelling (`us`, `eu`),
//! parsed with [`FromStr`](std::str::FromStr) and shown with [`Display`](fmt::Display), and the
//! Profile API base URL it stands for.

use std::fmt;

use super::diagnostic::shown;

/// The Segment region that hosts a space.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Region {
    /// United States (the default).
    #[default]
    Us,
    /// Europe (Dublin).
    Eu,
}

impl Region {
    /// The Profile API base URL of the region.
    pub fn base_url(self) -> &'static str {
        match self {
            Self::Us => "https://profiles.segment.com",
            Self::Eu => "https://profiles.euw1.segment.com",
        }
    }

    /// The manifest spelling: `us` or `eu`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Us => "us",
            Self::Eu => "eu",
        }
    }
}

/// A region name that is neither `us` nor `eu`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown region `{}`; expected `us` or `eu`", shown(.0))]
pub struct UnknownRegion(pub String);

impl std::str::FromStr for Region {
    type Err = UnknownRegion;

    /// `us` or `eu`, exactly (the manifest spelling).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "us" => Ok(Self::Us),
            "eu" => Ok(Self::Eu),
            other => Err(UnknownRegion(other.to_owned())),
        }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
