//! Which devices match: the pure part of `mxtoken devices`, clock passed in.

use super::device::Device;
use std::collections::HashSet;
use std::time::Duration;

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// Whether to keep or drop devices the broker created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BrokerDevices {
    /// Broker devices and others alike.
    #[default]
    Any,
    /// Only devices whose id does not carry the broker's prefix.
    Exclude,
    /// Only devices whose id carries the broker's prefix.
    Only,
}

/// The filters of `mxtoken devices`; every one that is set must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Case-insensitive substring of `last_seen_user_agent` (missing = "").
    pub user_agent: Option<String>,
    /// Case-insensitive substring of `display_name` (missing = "").
    pub display_name: Option<String>,
    /// Last seen at least this long ago; never-seen devices do not match.
    pub older_than: Option<Duration>,
    /// Ansible `synapse_device_info`'s `older_than_days`: 0 matches only
    /// never-seen devices, N > 0 devices last seen at least N days ago.
    pub older_than_days: Option<u32>,
    /// Only devices never seen (`last_seen_ts` null).
    pub never_used: bool,
    /// Broker devices in or out.
    pub broker: BrokerDevices,
}

impl Filter {
    /// Whether `d` passes every filter at time `now_ms` (Unix milliseconds).
    pub fn matches(&self, d: &Device, now_ms: u64) -> bool {
        // A clock behind the homeserver's makes a device look seen "in the
        // future"; count that as age zero rather than wrapping around.
        let age_ms = d.last_seen_ts.map(|t| now_ms.saturating_sub(t));
        contains_ci(
            d.last_seen_user_agent.as_deref(),
            self.user_agent.as_deref(),
        ) && contains_ci(d.display_name.as_deref(), self.display_name.as_deref())
            && self
                .older_than
                .is_none_or(|min| age_ms.is_some_and(|age| u128::from(age) >= min.as_millis()))
            && self
                .older_than_days
                .is_none_or(|days| match (days, age_ms) {
                    (0, age) => age.is_none(),
                    (n, Some(age)) => age >= u64::from(n) * DAY_MS,
                    (_, None) => false,
                })
            && (!self.never_used || d.last_seen_ts.is_none())
            && match self.broker {
                BrokerDevices::Any => true,
                BrokerDevices::Exclude => !d.is_broker_device(),
                BrokerDevices::Only => d.is_broker_device(),
            }
    }
}

fn contains_ci(value: Option<&str>, needle: Option<&str>) -> bool {
    needle.is_none_or(|n| {
        value
            .unwrap_or("")
            .to_lowercase()
            .contains(&n.to_lowercase())
    })
}

/// The outcome of applying a [`Filter`] to a user's devices.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// Every device of the user except the command's own lease device.
    pub devices: Vec<Device>,
    /// Indices into `devices` of the matches that may be revoked.
    pub matched: Vec<usize>,
    /// Indices into `devices` of matches spared because the broker uses them:
    /// a live lease's device, or a broker session's.
    pub spared: Vec<usize>,
}

impl Selection {
    /// Applies `filter` at `now_ms`. `own_device` (this command's lease
    /// device) is dropped from the listing altogether: it exists only while
    /// the command runs. Devices in `live` belong to live leases of the
    /// broker and are never matches; nor are broker session devices, which
    /// the broker may be using and which `mxtoken sweep` cleans safely.
    pub fn new(
        all: Vec<Device>,
        filter: &Filter,
        now_ms: u64,
        own_device: Option<&str>,
        live: &HashSet<String>,
    ) -> Self {
        let devices: Vec<Device> = all
            .into_iter()
            .filter(|d| Some(d.device_id.as_str()) != own_device)
            .collect();
        let (mut matched, mut spared) = (Vec::new(), Vec::new());
        for (i, d) in devices.iter().enumerate() {
            if filter.matches(d, now_ms) {
                if live.contains(&d.device_id) || d.is_broker_session() {
                    spared.push(i);
                } else {
                    matched.push(i);
                }
            }
        }
        Self {
            devices,
            matched,
            spared,
        }
    }

    /// The matched devices, in the homeserver's order.
    pub fn matched_devices(&self) -> impl Iterator<Item = &Device> {
        self.matched.iter().map(|&i| &self.devices[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_800_000_000_000;

    fn dev(id: &str, name: Option<&str>, ua: Option<&str>, seen_days_ago: Option<u64>) -> Device {
        Device::from_json(json!({
            "device_id": id,
            "display_name": name,
            "last_seen_user_agent": ua,
            "last_seen_ts": seen_days_ago.map(|d| NOW - d * DAY_MS),
        }))
        .expect("device")
    }

    fn ids(f: &Filter, devices: &[Device]) -> Vec<String> {
        devices
            .iter()
            .filter(|d| f.matches(d, NOW))
            .map(|d| d.device_id.clone())
            .collect()
    }

    fn fleet() -> Vec<Device> {
        vec![
            dev(
                "OLD_ANSIBLE",
                Some("Ansible run"),
                Some("ansible-httpget"),
                Some(40),
            ),
            dev("NEW_ANSIBLE", None, Some("Ansible-HTTPGET/2.0"), Some(1)),
            dev("NEVER", Some("spare"), None, None),
            dev(
                "MXTOKEN_ABC",
                Some("mxtoken: cron"),
                Some("mxtoken/0.1"),
                Some(10),
            ),
            dev("MXTOKEN_NEVER", Some("mxtoken: get"), None, None),
        ]
    }

    #[test]
    fn broker_sessions_are_spared_like_live_leases() {
        let mut devices = fleet();
        devices.push(dev(
            "MXTOKEN_BROKER_X1",
            None,
            Some("mxtoken/0.1"),
            Some(90),
        ));
        let s = Selection::new(devices, &Filter::default(), NOW, None, &HashSet::new());
        assert_eq!(s.matched.len(), 5);
        assert_eq!(s.devices[s.spared[0]].device_id, "MXTOKEN_BROKER_X1");
    }

    #[test]
    fn no_filter_matches_everything() {
        assert_eq!(ids(&Filter::default(), &fleet()).len(), 5);
    }

    #[test]
    fn substring_filters_ignore_case_and_treat_missing_as_empty() {
        let f = Filter {
            user_agent: Some("ANSIBLE-httpget".into()),
            ..Filter::default()
        };
        assert_eq!(ids(&f, &fleet()), ["OLD_ANSIBLE", "NEW_ANSIBLE"]);
        let f = Filter {
            display_name: Some("MXTOKEN:".into()),
            ..Filter::default()
        };
        assert_eq!(ids(&f, &fleet()), ["MXTOKEN_ABC", "MXTOKEN_NEVER"]);
        // An empty needle is contained in the empty string: missing values match.
        let f = Filter {
            user_agent: Some(String::new()),
            ..Filter::default()
        };
        assert_eq!(ids(&f, &fleet()).len(), 5);
    }

    #[test]
    fn older_than_skips_never_seen_and_includes_the_boundary() {
        let f = Filter {
            older_than: Some(Duration::from_secs(10 * 86_400)),
            ..Filter::default()
        };
        assert_eq!(ids(&f, &fleet()), ["OLD_ANSIBLE", "MXTOKEN_ABC"]);
        let f = Filter {
            older_than: Some(Duration::ZERO),
            ..Filter::default()
        };
        assert_eq!(
            ids(&f, &fleet()),
            ["OLD_ANSIBLE", "NEW_ANSIBLE", "MXTOKEN_ABC"]
        );
    }

    #[test]
    fn older_than_days_has_the_ansible_meaning() {
        let days = |n| Filter {
            older_than_days: Some(n),
            ..Filter::default()
        };
        assert_eq!(ids(&days(0), &fleet()), ["NEVER", "MXTOKEN_NEVER"]);
        assert_eq!(ids(&days(10), &fleet()), ["OLD_ANSIBLE", "MXTOKEN_ABC"]);
        assert_eq!(
            ids(&days(1), &fleet()),
            ["OLD_ANSIBLE", "NEW_ANSIBLE", "MXTOKEN_ABC"]
        );
        assert!(ids(&days(41), &fleet()).is_empty());
    }

    #[test]
    fn never_used_and_broker_filters_combine_with_and() {
        let f = Filter {
            never_used: true,
            broker: BrokerDevices::Exclude,
            ..Filter::default()
        };
        assert_eq!(ids(&f, &fleet()), ["NEVER"]);
        let f = Filter {
            never_used: true,
            broker: BrokerDevices::Only,
            ..Filter::default()
        };
        assert_eq!(ids(&f, &fleet()), ["MXTOKEN_NEVER"]);
        // Contradictory filters match nothing, which is not an error.
        let f = Filter {
            never_used: true,
            older_than: Some(Duration::from_secs(1)),
            ..Filter::default()
        };
        assert!(ids(&f, &fleet()).is_empty());
        let f = Filter {
            user_agent: Some("ansible".into()),
            older_than_days: Some(30),
            broker: BrokerDevices::Exclude,
            ..Filter::default()
        };
        assert_eq!(ids(&f, &fleet()), ["OLD_ANSIBLE"]);
    }

    #[test]
    fn a_device_seen_in_the_future_has_age_zero() {
        let future = Device::from_json(json!({"device_id": "F", "last_seen_ts": NOW + 5_000}))
            .expect("device");
        let f = Filter {
            older_than: Some(Duration::from_secs(1)),
            ..Filter::default()
        };
        assert!(!f.matches(&future, NOW));
        assert!(Filter::default().matches(&future, NOW));
    }

    #[test]
    fn selection_drops_the_own_device_and_spares_live_leases() {
        let live: HashSet<String> = ["MXTOKEN_ABC".to_owned()].into();
        let f = Filter {
            broker: BrokerDevices::Only,
            ..Filter::default()
        };
        let s = Selection::new(fleet(), &f, NOW, Some("MXTOKEN_NEVER"), &live);
        assert_eq!(s.devices.len(), 4);
        assert!(s.matched.is_empty());
        assert_eq!(s.devices[s.spared[0]].device_id, "MXTOKEN_ABC");
        let s = Selection::new(fleet(), &Filter::default(), NOW, None, &live);
        let matched: Vec<&str> = s.matched_devices().map(|d| d.device_id.as_str()).collect();
        assert_eq!(
            matched,
            ["OLD_ANSIBLE", "NEW_ANSIBLE", "NEVER", "MXTOKEN_NEVER"]
        );
    }
}
