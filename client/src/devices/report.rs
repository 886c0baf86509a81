//! What `mxtoken devices` prints: a table for people, JSON for playbooks.

use super::filter::Selection;
use jiff::tz::TimeZone;
use serde_json::{Value, json};

/// What the command did with the matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Listed them.
    Listed,
    /// `--revoke --dry-run`: would revoke them.
    WouldRevoke,
    /// `--revoke`: revoked them.
    Revoked,
}

/// Longest user agent or display name shown in the table; `--json` has all.
const MAX_TEXT: usize = 40;

/// The `--json` document: exactly the keys of Ansible's `synapse_device_info`
/// result. Like Ansible's check mode, a dry run lists in `revoked_devices`
/// what would go and sets `changed` as the real run would.
pub fn json(sel: &Selection, action: Action) -> String {
    let matched: Vec<Value> = sel.matched_devices().map(|d| d.raw.clone()).collect();
    let revoked: Vec<&str> = match action {
        Action::Listed => Vec::new(),
        Action::WouldRevoke | Action::Revoked => sel
            .matched_devices()
            .map(|d| d.device_id.as_str())
            .collect(),
    };
    let doc = json!({
        "devices": sel.devices.iter().map(|d| &d.raw).collect::<Vec<_>>(),
        "total_devices": sel.devices.len(),
        "matched_count": matched.len(),
        "matched_devices": matched,
        "changed": !revoked.is_empty(),
        "revoked_devices": revoked,
    });
    format!("{doc}\n")
}

/// The table of matches, oldest last-seen first (never-seen before all),
/// then a summary line.
pub fn table(sel: &Selection, action: Action, now_ms: u64, tz: &TimeZone) -> String {
    let mut rows: Vec<[String; 6]> = Vec::with_capacity(sel.matched.len());
    let mut order: Vec<&super::device::Device> = sel.matched_devices().collect();
    order.sort_by(|a, b| {
        a.last_seen_ts
            .cmp(&b.last_seen_ts)
            .then_with(|| a.device_id.cmp(&b.device_id))
    });
    for d in order {
        let (seen, age) = match d.last_seen_ts {
            None => ("never".to_owned(), String::new()),
            Some(ts) => (local_time(ts, tz), age(now_ms.saturating_sub(ts))),
        };
        rows.push([
            clean(&d.device_id, usize::MAX),
            seen,
            age,
            clean(d.last_seen_ip.as_deref().unwrap_or(""), MAX_TEXT),
            clean(d.last_seen_user_agent.as_deref().unwrap_or(""), MAX_TEXT),
            clean(d.display_name.as_deref().unwrap_or(""), MAX_TEXT),
        ]);
    }
    let mut out = String::new();
    if !rows.is_empty() {
        let header = [
            "DEVICE",
            "LAST SEEN",
            "AGE",
            "IP",
            "USER AGENT",
            "DISPLAY NAME",
        ]
        .map(str::to_owned);
        let mut widths = [0usize; 6];
        for r in std::iter::once(&header).chain(&rows) {
            for (w, cell) in widths.iter_mut().zip(r) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for r in std::iter::once(&header).chain(&rows) {
            let mut line = String::new();
            for (i, (w, cell)) in widths.iter().zip(r).enumerate() {
                if i + 1 == r.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<w$}  "));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    out.push_str(&summary(sel, action));
    out
}

fn summary(sel: &Selection, action: Action) -> String {
    let (m, t) = (sel.matched.len(), sel.devices.len());
    let devices = if t == 1 { "device" } else { "devices" };
    let mut line = match action {
        Action::Listed => format!("{m} of {t} {devices} match"),
        Action::WouldRevoke => format!("would revoke {m} of {t} {devices} (dry run)"),
        Action::Revoked => format!("revoked {m} of {t} {devices}"),
    };
    if !sel.spared.is_empty() {
        line.push_str(&format!(
            "; {} more in use by this broker (live leases, its sessions), spared",
            sel.spared.len()
        ));
    }
    line.push('\n');
    line
}

fn local_time(ms: u64, tz: &TimeZone) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map_or_else(
            || format!("{ms} ms"),
            |t| {
                t.to_zoned(tz.clone())
                    .strftime("%Y-%m-%d %H:%M:%S %Z")
                    .to_string()
            },
        )
}

/// A compact age: `45s`, `12m`, `5h`, `40d`.
fn age(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// Homeserver-supplied text made safe for a terminal (a user agent is
/// whatever a client sent: it may hold escape sequences) and cut to `max`.
fn clean(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(max)
        .collect();
    if s.chars().count() > max {
        out.pop();
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::device::Device;
    use crate::devices::filter::{Filter, Selection};
    use std::collections::HashSet;

    const NOW: u64 = 1_800_000_000_000;

    fn selection() -> Selection {
        let devices = [
            json!({"device_id": "RECENT", "last_seen_ts": NOW - 90_000, "last_seen_ip": "10.0.0.1",
                   "last_seen_user_agent": "curl/8\u{1b}[31m", "display_name": "x".repeat(60), "user_id": "@a:b"}),
            json!({"device_id": "NEVER", "last_seen_ts": null, "user_id": "@a:b"}),
            json!({"device_id": "OLD", "last_seen_ts": 1_000, "user_id": "@a:b"}),
            json!({"device_id": "MXTOKEN_LIVE", "last_seen_ts": null, "user_id": "@a:b"}),
        ]
        .into_iter()
        .map(|v| Device::from_json(v).expect("device"))
        .collect();
        let live: HashSet<String> = ["MXTOKEN_LIVE".to_owned()].into();
        Selection::new(devices, &Filter::default(), NOW, None, &live)
    }

    #[test]
    fn json_has_exactly_the_ansible_keys_and_synapse_fields() {
        let v: Value = serde_json::from_str(&json(&selection(), Action::Listed)).expect("json");
        let mut keys: Vec<&str> = v
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "changed",
                "devices",
                "matched_count",
                "matched_devices",
                "revoked_devices",
                "total_devices"
            ]
        );
        assert_eq!(v["total_devices"], 4);
        assert_eq!(v["matched_count"], 3);
        assert_eq!(v["changed"], false);
        assert_eq!(v["revoked_devices"], json!([]));
        assert_eq!(v["devices"][0]["user_id"], "@a:b");
        let dry: Value =
            serde_json::from_str(&json(&selection(), Action::WouldRevoke)).expect("json");
        assert_eq!(dry["revoked_devices"], json!(["RECENT", "NEVER", "OLD"]));
        assert_eq!(dry["changed"], true);
    }

    #[test]
    fn table_sorts_oldest_first_and_defuses_escapes() {
        let t = table(&selection(), Action::Revoked, NOW, &TimeZone::UTC);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("DEVICE "), "{t}");
        assert!(
            lines[1].starts_with("NEVER ") && lines[1].contains("never"),
            "{t}"
        );
        assert!(
            lines[2].starts_with("OLD ") && lines[2].contains("1970-01-01 00:00:01 UTC"),
            "{t}"
        );
        assert!(
            lines[3].starts_with("RECENT ") && lines[3].contains(" 1m "),
            "{t}"
        );
        assert!(
            !t.contains('\u{1b}') && lines[3].contains("curl/8?[31m"),
            "{t}"
        );
        assert!(lines[3].ends_with('…'), "{t}");
        assert_eq!(
            lines[4],
            "revoked 3 of 4 devices; 1 more in use by this broker (live leases, its sessions), spared"
        );
    }

    #[test]
    fn no_match_prints_only_the_summary() {
        let sel = Selection::new(Vec::new(), &Filter::default(), NOW, None, &HashSet::new());
        assert_eq!(
            table(&sel, Action::Listed, NOW, &TimeZone::UTC),
            "0 of 0 devices match\n"
        );
    }

    #[test]
    fn ages_are_compact() {
        assert_eq!(age(59_999), "59s");
        assert_eq!(age(60_000), "1m");
        assert_eq!(age(7_200_000), "2h");
        assert_eq!(age(40 * 86_400_000), "40d");
    }
}
