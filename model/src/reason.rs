use std::fmt;
use std::str::FromStr;

/// Why a record was quarantined (contract section 1.3). Checks run in the order of the variants;
/// the first that fails names the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReasonCode {
    InvalidEncoding,
    InvalidJson,
    UnknownEventType,
    SchemaViolation,
    InconsistentTotal,
    EventTimeOutOfRange,
}

impl ReasonCode {
    pub const ALL: [ReasonCode; 6] = [
        ReasonCode::InvalidEncoding,
        ReasonCode::InvalidJson,
        ReasonCode::UnknownEventType,
        ReasonCode::SchemaViolation,
        ReasonCode::InconsistentTotal,
        ReasonCode::EventTimeOutOfRange,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::InvalidEncoding => "invalid_encoding",
            ReasonCode::InvalidJson => "invalid_json",
            ReasonCode::UnknownEventType => "unknown_event_type",
            ReasonCode::SchemaViolation => "schema_violation",
            ReasonCode::InconsistentTotal => "inconsistent_total",
            ReasonCode::EventTimeOutOfRange => "event_time_out_of_range",
        }
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is none of the contract's reason codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown reason code {0:?}")]
pub struct UnknownReasonCode(pub String);

impl FromStr for ReasonCode {
    type Err = UnknownReasonCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ReasonCode::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| UnknownReasonCode(s.to_string()))
    }
}

/// A record that is not an event: its reason code and a human-readable reason (which field, what
/// was wrong).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: ReasonCode,
    pub reason: String,
}

impl Rejection {
    pub fn new(code: ReasonCode, reason: impl Into<String>) -> Self {
        Rejection { code, reason: reason.into() }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_their_names() {
        for code in ReasonCode::ALL {
            assert_eq!(code.as_str().parse::<ReasonCode>().unwrap(), code);
        }
        assert!("nope".parse::<ReasonCode>().is_err());
    }
}
