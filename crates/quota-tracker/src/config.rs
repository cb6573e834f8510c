//! Which services are tracked, and their limits.

use std::fmt;
use std::str::FromStr;

use crate::counters::MAX_SERVICES;
use crate::error::{ConfigError, QuotaError};
use crate::lease::LeasePolicy;
use crate::usage::CRITICAL_PERCENT;

/// The quota window a limit is quoted for: the count resets at each UTC calendar minute,
/// hour, day or month (see [`crate::Window`]). The original service read it as a label and
/// reset everything at midnight only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Period {
    /// Per minute.
    Minute,
    /// Per hour.
    Hour,
    /// Per day.
    Day,
    /// Per month.
    Month,
}

impl Period {
    /// The label used in output and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Minute => "minute",
            Period::Hour => "hour",
            Period::Day => "day",
            Period::Month => "month",
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Period {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s {
            "minute" => Ok(Period::Minute),
            "hour" => Ok(Period::Hour),
            "day" => Ok(Period::Day),
            "month" => Ok(Period::Month),
            _ => Err(ConfigError::InvalidPeriod {
                input: s.to_owned(),
            }),
        }
    }
}

/// One tracked service: its name, its limit and what a call costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    name: String,
    limit: u64,
    period: Period,
    cost_micros: u64,
}

impl ServiceConfig {
    /// A service named `name` allowing `limit` calls per `period`.
    ///
    /// The limit is signed so that a zero or negative limit from a configuration file is
    /// refused with a clear error rather than wrapping.
    pub fn new(name: impl Into<String>, limit: i64, period: Period) -> Result<Self, ConfigError> {
        let name = name.into();
        if !is_valid_name(&name) {
            return Err(ConfigError::InvalidName { name });
        }
        let limit = match u64::try_from(limit) {
            Ok(limit) if limit > 0 => limit,
            _ => {
                return Err(ConfigError::InvalidLimit {
                    service: name,
                    limit,
                });
            }
        };
        Ok(Self {
            name,
            limit,
            period,
            cost_micros: 0,
        })
    }

    /// The same service, each call costing `micros` millionths of a currency unit (for
    /// [`crate::Tracker::estimated_daily_cost`]; 0, free, unless set).
    pub fn with_cost_per_call_micros(mut self, micros: u64) -> Self {
        self.cost_micros = micros;
        self
    }

    /// What one call costs, in millionths of a currency unit.
    pub fn cost_per_call_micros(&self) -> u64 {
        self.cost_micros
    }

    /// The service name (also the store attribute prefix: `<name>_used`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Calls allowed per period; always at least 1.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The period the limit is quoted for.
    pub fn period(&self) -> Period {
        self.period
    }
}

fn is_valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && name.len() <= 64
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
}

/// A service, by its position in the configuration: resolve names once, then record by id
/// so the hot path never hashes or compares strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceId(pub(crate) usize);

impl ServiceId {
    /// The position of the service in its configuration.
    pub fn index(self) -> usize {
        self.0
    }
}

/// The services a tracker counts, and how close to a limit admission may go. Fixed once
/// built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaConfig {
    services: Vec<ServiceConfig>,
    ceiling_percent: u64,
    leases: Option<LeasePolicy>,
}

impl QuotaConfig {
    /// A configuration of `services`, in that order; refuses an empty list, more than
    /// [`MAX_SERVICES`] and duplicates.
    pub fn new(services: Vec<ServiceConfig>) -> Result<Self, ConfigError> {
        if services.is_empty() {
            return Err(ConfigError::NoServices);
        }
        if services.len() > MAX_SERVICES {
            return Err(ConfigError::TooManyServices {
                count: services.len(),
            });
        }
        for (i, service) in services.iter().enumerate() {
            if services[..i].iter().any(|s| s.name == service.name) {
                return Err(ConfigError::DuplicateService {
                    name: service.name.clone(),
                });
            }
        }
        Ok(Self {
            services,
            ceiling_percent: CRITICAL_PERCENT,
            leases: None,
        })
    }

    /// The same services, admitting calls while `used` stays at or under `percent` of each
    /// limit (rounded up). The default is the critical threshold, 80 %, as the original's
    /// `can_call`; 100 admits up to the limit itself. Refuses 0 and anything above 100.
    pub fn with_admission_ceiling(mut self, percent: u64) -> Result<Self, ConfigError> {
        if !(1..=100).contains(&percent) {
            return Err(ConfigError::InvalidCeiling { percent });
        }
        self.ceiling_percent = percent;
        Ok(self)
    }

    /// The same services in the bounded mode ([`crate::lease`]): admission only from leases
    /// the store grants, so every instance sharing the store, together, admits at most the
    /// ceiling per window. Every instance of a fleet must use the same configuration.
    pub fn with_leases(mut self, policy: LeasePolicy) -> Self {
        self.leases = Some(policy);
        self
    }

    /// The lease policy in the bounded mode; `None` in the default mode, where each instance
    /// decides from its own view of the count (see ARCHITECTURE.md for that bound).
    pub fn lease_policy(&self) -> Option<&LeasePolicy> {
        self.leases.as_ref()
    }

    /// The admission ceiling, in percent of each limit.
    pub fn admission_ceiling_percent(&self) -> u64 {
        self.ceiling_percent
    }

    /// The configured services, in order.
    pub fn services(&self) -> &[ServiceConfig] {
        &self.services
    }

    /// How many services there are.
    pub fn len(&self) -> usize {
        self.services.len()
    }

    /// Always false: a configuration has at least one service.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// The id of the service called `name`.
    pub fn service(&self, name: &str) -> Result<ServiceId, QuotaError> {
        self.services
            .iter()
            .position(|s| s.name == name)
            .map(ServiceId)
            .ok_or_else(|| QuotaError::UnknownService {
                name: name.to_owned(),
                known: self.names().map(str::to_owned).collect(),
            })
    }

    /// The ids of all services, in order.
    pub fn ids(&self) -> impl Iterator<Item = ServiceId> + '_ {
        (0..self.services.len()).map(ServiceId)
    }

    /// The service names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.services.iter().map(|s| s.name.as_str())
    }

    /// The configuration of `id`, checking that it belongs to a configuration this large.
    pub fn get(&self, id: ServiceId) -> Result<&ServiceConfig, QuotaError> {
        self.services
            .get(id.0)
            .ok_or(QuotaError::ServiceIdOutOfRange {
                index: id.0,
                services: self.services.len(),
            })
    }
}

impl Default for QuotaConfig {
    /// The original service's quotas: tiingo 500/month, finnhub 60/minute, sendgrid 100/day.
    fn default() -> Self {
        let service = |name: &str, limit, period| ServiceConfig {
            name: name.to_owned(),
            limit,
            period,
            cost_micros: 0,
        };
        Self {
            ceiling_percent: CRITICAL_PERCENT,
            leases: None,
            services: vec![
                service("tiingo", 500, Period::Month),
                service("finnhub", 60, Period::Minute),
                service("sendgrid", 100, Period::Day),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_original() {
        let config = QuotaConfig::default();
        let summary: Vec<_> = config
            .services()
            .iter()
            .map(|s| (s.name(), s.limit(), s.period()))
            .collect();
        assert_eq!(
            summary,
            [
                ("tiingo", 500, Period::Month),
                ("finnhub", 60, Period::Minute),
                ("sendgrid", 100, Period::Day)
            ]
        );
    }

    #[test]
    fn refuses_bad_limits_and_names() {
        for limit in [0, -1, i64::MIN] {
            let err = ServiceConfig::new("tiingo", limit, Period::Day).expect_err("refused");
            assert_eq!(
                err,
                ConfigError::InvalidLimit {
                    service: "tiingo".into(),
                    limit
                }
            );
            assert!(err.to_string().contains("positive"), "{err}");
        }
        for name in ["", "Tiingo", "1abc", "a b", "a#b", &"x".repeat(65)] {
            assert!(matches!(
                ServiceConfig::new(name, 1, Period::Day),
                Err(ConfigError::InvalidName { .. })
            ));
        }
    }

    #[test]
    fn refuses_empty_and_duplicate_configurations() {
        assert_eq!(QuotaConfig::new(vec![]), Err(ConfigError::NoServices));
        let a = ServiceConfig::new("a", 1, Period::Day).expect("valid");
        assert_eq!(
            QuotaConfig::new(vec![a.clone(), a]),
            Err(ConfigError::DuplicateService { name: "a".into() })
        );
    }

    #[test]
    fn the_admission_ceiling_is_a_percentage_up_to_the_limit() {
        assert_eq!(QuotaConfig::default().admission_ceiling_percent(), 80);
        for percent in [1, 25, 100] {
            let config = QuotaConfig::default().with_admission_ceiling(percent);
            assert_eq!(config.map(|c| c.admission_ceiling_percent()), Ok(percent));
        }
        for percent in [0, 101, u64::MAX] {
            let err = QuotaConfig::default()
                .with_admission_ceiling(percent)
                .expect_err("refused");
            assert_eq!(err, ConfigError::InvalidCeiling { percent });
            assert!(err.to_string().contains("1 to 100"), "{err}");
        }
    }

    #[test]
    fn refuses_more_services_than_a_state_has_slots_for() {
        let services = |count: usize| {
            (0..count)
                .map(|i| ServiceConfig::new(format!("s{i}"), 10, Period::Day))
                .collect::<Result<Vec<_>, _>>()
                .unwrap_or_else(|e| panic!("{e}"))
        };
        assert!(QuotaConfig::new(services(MAX_SERVICES)).is_ok());
        let err = QuotaConfig::new(services(MAX_SERVICES + 1)).expect_err("too many");
        assert_eq!(err, ConfigError::TooManyServices { count: 65 });
        assert!(err.to_string().contains("at most 64"), "{err}");
    }

    #[test]
    fn resolves_names_and_reports_unknown_ones() {
        let config = QuotaConfig::default();
        assert_eq!(config.service("finnhub").map(ServiceId::index), Ok(1));
        let err = config.service("alpaca").expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "unknown service \"alpaca\": expected one of tiingo, finnhub, sendgrid"
        );
        assert!(config.get(ServiceId(3)).is_err());
    }
}
