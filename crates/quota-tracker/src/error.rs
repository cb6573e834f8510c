//! Typed errors: every bad input is refused before anything recorded changes.

/// Why a call on the tracker was refused. Nothing recorded changes when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuotaError {
    /// The service name is not configured.
    #[error("unknown service {name:?}: expected one of {}", known.join(", "))]
    UnknownService {
        /// The name that was asked for.
        name: String,
        /// The configured service names.
        known: Vec<String>,
    },
    /// A `ServiceId` from a different configuration.
    #[error("service id {index} is out of range: this tracker has {services} services")]
    ServiceIdOutOfRange {
        /// The index carried by the id.
        index: usize,
        /// How many services this tracker has.
        services: usize,
    },
    /// `record_call` with `count == 0`.
    #[error("invalid count 0 for service {service:?}: expected a count of at least 1")]
    ZeroCount {
        /// The service the call was for.
        service: String,
    },
    /// Adding the count would overflow a 64-bit counter.
    #[error(
        "count {count} for service {service:?} would overflow its counters (used {used}; a count, and the calls pending between syncs, are at most {})",
        i64::MAX
    )]
    Overflow {
        /// The service the call was for.
        service: String,
        /// The counter before the call.
        used: u64,
        /// The count that was refused.
        count: u64,
    },
    /// A refund of more calls than the reservation's day still counts (a reservation of
    /// another tracker, or of a day this tracker never saw).
    #[error(
        "refund of {count} calls to service {service:?} on {day} does not match a reservation of this tracker (used {used})"
    )]
    RefundWithoutReservation {
        /// The service.
        service: String,
        /// The reservation's day.
        day: String,
        /// The calls refunded.
        count: u64,
        /// The service's count in its current window.
        used: u64,
    },
}

/// Why a quota configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A configuration with no services.
    #[error("no services configured: expected at least one")]
    NoServices,
    /// More services than one configuration holds.
    #[error("{count} services configured: expected at most {max}", max = crate::MAX_SERVICES)]
    TooManyServices {
        /// How many were given.
        count: usize,
    },
    /// A service name that cannot be a store attribute name.
    #[error(
        "invalid service name {name:?}: expected 1-64 characters from a-z, 0-9, '_' and '-', starting with a letter"
    )]
    InvalidName {
        /// The refused name.
        name: String,
    },
    /// The same service twice.
    #[error("service {name:?} is configured twice")]
    DuplicateService {
        /// The repeated name.
        name: String,
    },
    /// A limit of zero or below.
    #[error("invalid limit {limit} for service {service:?}: expected a positive number of calls")]
    InvalidLimit {
        /// The service.
        service: String,
        /// The refused limit.
        limit: i64,
    },
    /// An admission ceiling outside 1-100 %.
    #[error("invalid admission ceiling {percent} %: expected 1 to 100 (percent of each limit)")]
    InvalidCeiling {
        /// The refused percentage.
        percent: u64,
    },
    /// A lease block outside 1-100 % of the ceiling.
    #[error("invalid lease block {percent} %: expected 1 to 100 (percent of each ceiling)")]
    InvalidLeaseBlock {
        /// The refused percentage.
        percent: u64,
    },
    /// A period label that is not known.
    #[error("invalid period {input:?}: expected one of minute, hour, day, month")]
    InvalidPeriod {
        /// The refused label.
        input: String,
    },
}
