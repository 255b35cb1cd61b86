//! Send limits and the anomaly rules, as pure functions of counts read from the send audit.
//!
//! The store counts a mailbox's accepted sends in each window inside the transaction that
//! would accept the next one (with the mailbox locked on Postgres), so a limit holds across
//! every instance on one database. What to do with the counts is decided here.

use chrono::{DateTime, Duration, Utc};
use kapable_sdk::comms::types::{SendLimits, SetMailboxQuotasRequest};
use serde_json::json;

use crate::config::SendPolicy;

/// The largest limit a quota override may set.
pub const QUOTA_MAX: i64 = 1_000_000;

/// A window a limit counts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Any 60 seconds.
    Minute,
    /// Any hour.
    Hour,
    /// Any 24 hours.
    Day,
}

impl Window {
    /// Every window, shortest first.
    pub const ALL: [Window; 3] = [Window::Minute, Window::Hour, Window::Day];

    /// Its name in the API.
    pub fn name(self) -> &'static str {
        match self {
            Window::Minute => "minute",
            Window::Hour => "hour",
            Window::Day => "day",
        }
    }

    /// Its length.
    pub fn length(self) -> Duration {
        match self {
            Window::Minute => Duration::minutes(1),
            Window::Hour => Duration::hours(1),
            Window::Day => Duration::days(1),
        }
    }

    fn of(self, limits: &SendLimits) -> i64 {
        match self {
            Window::Minute => limits.per_minute,
            Window::Hour => limits.per_hour,
            Window::Day => limits.per_day,
        }
    }
}

/// The gateway's default limits.
pub fn defaults(policy: &SendPolicy) -> SendLimits {
    SendLimits { per_minute: policy.per_minute, per_hour: policy.per_hour, per_day: policy.per_day }
}

/// The limits that apply: the override where it sets one, the default elsewhere.
pub fn effective(defaults: SendLimits, overrides: Option<SetMailboxQuotasRequest>) -> SendLimits {
    let o = overrides.unwrap_or_default();
    SendLimits {
        per_minute: o.per_minute.unwrap_or(defaults.per_minute),
        per_hour: o.per_hour.unwrap_or(defaults.per_hour),
        per_day: o.per_day.unwrap_or(defaults.per_day),
    }
}

/// A mailbox's accepted sends in each window, and in the anomaly window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Usage {
    /// In the last 60 seconds.
    pub minute: i64,
    /// In the last hour.
    pub hour: i64,
    /// In the last 24 hours.
    pub day: i64,
    /// In the last anomaly window.
    pub recent: i64,
}

impl Usage {
    /// The counts as limits-shaped figures.
    pub fn as_limits(&self) -> SendLimits {
        SendLimits { per_minute: self.minute, per_hour: self.hour, per_day: self.day }
    }
}

/// A send refused for a full window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The window that is full (the shortest, when several are).
    pub window: Window,
    /// Its limit.
    pub limit: i64,
    /// Sends already accepted in it.
    pub sent: i64,
    /// Seconds until the window has room again (at least 1).
    pub retry_after: i64,
}

/// The first full window, if any: a send now would exceed its limit.
pub fn full_window(limits: &SendLimits, usage: &Usage) -> Option<(Window, i64, i64)> {
    let used = usage.as_limits();
    Window::ALL
        .into_iter()
        .map(|w| (w, w.of(limits), w.of(&used)))
        .find(|(_, limit, sent)| sent >= limit)
}

/// Seconds until a window whose oldest counted send was at `oldest` has room again.
pub fn retry_after(window: Window, oldest: Option<DateTime<Utc>>, at: DateTime<Utc>) -> i64 {
    let free_at = oldest.map_or(at + window.length(), |oldest| oldest + window.length());
    let millis = (free_at - at).num_milliseconds().max(0);
    (millis + 999) / 1000 + i64::from(millis == 0)
}

/// An anomaly a rule found, before it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// The rule's name.
    pub rule: &'static str,
    /// One sentence for people.
    pub summary: String,
    /// The figures the rule judged.
    pub evidence: serde_json::Value,
}

/// The anomaly window.
pub fn anomaly_window(policy: &SendPolicy) -> Duration {
    Duration::seconds(i64::from(policy.anomaly_window_secs))
}

/// `volume_spike`: the last window holds at least `volume_min` sends and at least
/// `volume_factor` times the mailbox's average window over the 24 hours before it. A mailbox
/// without history has a baseline of zero, so its first `volume_min` sends in a window flag it.
pub fn volume_spike(usage: &Usage, policy: &SendPolicy) -> Option<Finding> {
    let window = i64::from(policy.anomaly_window_secs);
    let earlier_windows = (86_400 / window - 1).max(1);
    let baseline = (usage.day - usage.recent).max(0) as f64 / earlier_windows as f64;
    let threshold = (baseline * f64::from(policy.volume_factor)).max(policy.volume_min as f64);
    (usage.recent as f64 >= threshold).then(|| Finding {
        rule: "volume_spike",
        summary: format!(
            "{} sends in {window} s against a baseline of {baseline:.1} per {window} s",
            usage.recent
        ),
        evidence: json!({
            "window_secs": window,
            "sent_in_window": usage.recent,
            "baseline_per_window": baseline,
            "factor": policy.volume_factor,
            "minimum": policy.volume_min,
        }),
    })
}

/// `rate_limit_burst`: at least `limit_hits` refused sends in one window.
pub fn rate_limit_burst(hits: i64, policy: &SendPolicy) -> Option<Finding> {
    let window = policy.anomaly_window_secs;
    (hits >= policy.limit_hits).then(|| Finding {
        rule: "rate_limit_burst",
        summary: format!("{hits} sends refused by rate limits in {window} s"),
        evidence: json!({ "window_secs": window, "hits_in_window": hits, "threshold": policy.limit_hits }),
    })
}

/// `failure_spike`: at least `failures` permanent delivery failures in one window.
pub fn failure_spike(failures: i64, last_error: &str, policy: &SendPolicy) -> Option<Finding> {
    let window = policy.anomaly_window_secs;
    (failures >= policy.failures).then(|| Finding {
        rule: "failure_spike",
        summary: format!("{failures} deliveries failed for good in {window} s"),
        evidence: json!({
            "window_secs": window,
            "failures_in_window": failures,
            "threshold": policy.failures,
            "last_error": last_error,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: SendPolicy = SendPolicy::DEFAULT;

    fn usage(minute: i64, hour: i64, day: i64, recent: i64) -> Usage {
        Usage { minute, hour, day, recent }
    }

    #[test]
    fn the_override_replaces_only_the_limits_it_sets() {
        let overrides = SetMailboxQuotasRequest { per_hour: Some(5), ..Default::default() };
        let limits = effective(defaults(&POLICY), Some(overrides));
        assert_eq!(limits, SendLimits { per_minute: 60, per_hour: 5, per_day: 10_000 });
        assert_eq!(effective(defaults(&POLICY), None), defaults(&POLICY));
    }

    #[test]
    fn the_shortest_full_window_refuses() {
        let limits = SendLimits { per_minute: 2, per_hour: 3, per_day: 3 };
        assert_eq!(full_window(&limits, &usage(1, 1, 1, 1)), None);
        assert_eq!(full_window(&limits, &usage(2, 2, 2, 2)), Some((Window::Minute, 2, 2)));
        assert_eq!(full_window(&limits, &usage(0, 3, 3, 0)), Some((Window::Hour, 3, 3)));
        let closed = SendLimits { per_minute: 0, per_hour: 0, per_day: 0 };
        assert_eq!(full_window(&closed, &Usage::default()), Some((Window::Minute, 0, 0)));
    }

    #[test]
    fn retry_after_counts_from_the_oldest_send_in_the_window() {
        let at = Utc::now();
        let oldest = at - Duration::seconds(45);
        assert_eq!(retry_after(Window::Minute, Some(oldest), at), 15);
        assert_eq!(retry_after(Window::Minute, None, at), 60);
        assert_eq!(retry_after(Window::Minute, Some(at - Duration::seconds(60)), at), 1);
    }

    #[test]
    fn a_burst_far_above_the_baseline_is_a_volume_spike() {
        // 288 windows a day: a steady 1 per window is a baseline of 1.
        let steady = usage(0, 12, 288, 1);
        assert_eq!(volume_spike(&steady, &POLICY), None);
        let burst = usage(60, 72, 347, 60);
        let finding = volume_spike(&burst, &POLICY).expect("a spike");
        assert_eq!(finding.rule, "volume_spike");
        assert_eq!(finding.evidence["sent_in_window"], 60);
    }

    #[test]
    fn a_busy_mailbox_needs_ten_times_its_own_baseline() {
        // A baseline of 10 per window: 60 is not a spike, 100 is.
        let day = 287 * 10;
        assert_eq!(volume_spike(&usage(0, 0, day + 60, 60), &POLICY), None);
        assert!(volume_spike(&usage(0, 0, day + 100, 100), &POLICY).is_some());
    }

    #[test]
    fn bursts_of_refusals_and_failures_are_flagged_at_their_thresholds() {
        assert_eq!(rate_limit_burst(9, &POLICY), None);
        assert!(rate_limit_burst(10, &POLICY).is_some());
        assert_eq!(failure_spike(4, "550", &POLICY), None);
        let finding = failure_spike(5, "550 no such user", &POLICY).expect("a spike");
        assert_eq!(finding.evidence["last_error"], "550 no such user");
    }
}
