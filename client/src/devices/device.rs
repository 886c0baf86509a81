//! One device as Synapse's admin API lists it.

use serde_json::Value;

/// The fields `mxtoken devices` filters and shows, plus Synapse's object as
/// received (so `--json` keeps Synapse's field names and any field we do not
/// know about).
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    /// `device_id`.
    pub device_id: String,
    /// `display_name`, if set.
    pub display_name: Option<String>,
    /// `last_seen_ts` in Unix milliseconds; `None` until the device's first
    /// authenticated request.
    pub last_seen_ts: Option<u64>,
    /// `last_seen_ip`.
    pub last_seen_ip: Option<String>,
    /// `last_seen_user_agent`.
    pub last_seen_user_agent: Option<String>,
    /// The object Synapse sent.
    pub raw: Value,
}

impl Device {
    /// Reads one element of Synapse's `devices` array. A field of the wrong
    /// type is an error rather than "missing": a garbled `last_seen_ts`
    /// must not make a device look never used and get it revoked.
    pub fn from_json(raw: Value) -> Result<Self, String> {
        let device_id = match raw.get("device_id") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err("a device without a device_id".into()),
        };
        let text = |key: &str| -> Result<Option<String>, String> {
            match raw.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(format!("device {device_id}: {key} is {other}")),
            }
        };
        let last_seen_ts = match raw.get("last_seen_ts") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64().ok_or_else(|| {
                format!("device {device_id}: last_seen_ts is {v}, not a timestamp")
            })?),
        };
        Ok(Self {
            display_name: text("display_name")?,
            last_seen_ip: text("last_seen_ip")?,
            last_seen_user_agent: text("last_seen_user_agent")?,
            last_seen_ts,
            device_id,
            raw,
        })
    }

    /// Whether this broker (any mxtokend) created the device.
    pub fn is_broker_device(&self) -> bool {
        self.device_id.starts_with(mxtoken_proto::DEVICE_PREFIX)
    }

    /// Whether the device is one of a broker's own sessions (root, maintenance,
    /// recovery: `MXTOKEN_<KIND>_<suffix>`) rather than a lease's
    /// (`MXTOKEN_<suffix>`, no second underscore). The broker does not list
    /// its sessions; only `mxtoken sweep` knows which are in use.
    pub fn is_broker_session(&self) -> bool {
        self.device_id
            .strip_prefix(mxtoken_proto::DEVICE_PREFIX)
            .is_some_and(|rest| rest.contains('_'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_synapse_fields_and_keeps_the_rest() {
        let raw = json!({
            "device_id": "ABC", "display_name": null, "last_seen_ts": 1_700_000_000_000_u64,
            "last_seen_ip": "127.0.0.1", "last_seen_user_agent": "curl/8", "user_id": "@a:b",
            "dehydrated": false
        });
        let d = Device::from_json(raw.clone()).expect("device");
        assert_eq!(d.device_id, "ABC");
        assert_eq!(d.display_name, None);
        assert_eq!(d.last_seen_ts, Some(1_700_000_000_000));
        assert_eq!(d.last_seen_user_agent.as_deref(), Some("curl/8"));
        assert_eq!(d.raw, raw);
        assert!(!d.is_broker_device());
    }

    #[test]
    fn garbled_fields_are_errors_not_missing() {
        assert!(Device::from_json(json!({"display_name": "x"})).is_err());
        assert!(Device::from_json(json!({"device_id": "A", "last_seen_ts": "yesterday"})).is_err());
        assert!(Device::from_json(json!({"device_id": "A", "last_seen_ts": -5})).is_err());
        assert!(Device::from_json(json!({"device_id": "A", "display_name": 3})).is_err());
        let never = Device::from_json(json!({"device_id": "MXTOKEN_X"})).expect("minimal");
        assert_eq!(never.last_seen_ts, None);
        assert!(never.is_broker_device() && !never.is_broker_session());
        let root = Device::from_json(json!({"device_id": "MXTOKEN_BROKER_AB12"})).expect("root");
        assert!(root.is_broker_device() && root.is_broker_session());
    }
}
