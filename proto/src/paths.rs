//! Where the broker's socket and config file live.
//!
//! Lookup order, first hit wins:
//! 1. an explicit path (`--socket`),
//! 2. `$MXTOKEN_SOCKET`,
//! 3. `$XDG_RUNTIME_DIR/mxtoken/broker.sock`,
//! 4. `/tmp/mxtoken-$UID/broker.sock`.

use std::path::PathBuf;

/// The inputs of socket-path resolution, so it needs no access to the process.
#[derive(Debug, Clone, Default)]
pub struct SocketLookup {
    /// A path given on the command line.
    pub explicit: Option<PathBuf>,
    /// The value of `$MXTOKEN_SOCKET`.
    pub env_socket: Option<String>,
    /// The value of `$XDG_RUNTIME_DIR`.
    pub xdg_runtime_dir: Option<String>,
    /// The caller's uid.
    pub uid: u32,
}

/// Resolves the socket path; see the module docs for the order. Empty
/// environment values count as unset, as the XDG spec asks.
pub fn resolve_socket_path(lookup: &SocketLookup) -> PathBuf {
    let non_empty = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(PathBuf::from);
    if let Some(p) = &lookup.explicit {
        return p.clone();
    }
    if let Some(p) = non_empty(&lookup.env_socket) {
        return p;
    }
    if let Some(dir) = non_empty(&lookup.xdg_runtime_dir) {
        return dir.join("mxtoken").join("broker.sock");
    }
    PathBuf::from(format!("/tmp/mxtoken-{}/broker.sock", lookup.uid))
}

/// The inputs of config-file resolution (used by `mxtokend` and by
/// `mxtoken init`/`import`, which must write where the broker reads).
#[derive(Debug, Clone, Default)]
pub struct ConfigLookup {
    /// A path given on the command line (`--config`).
    pub explicit: Option<PathBuf>,
    /// The value of `$MXTOKEN_CONFIG`.
    pub env_config: Option<String>,
    /// The value of `$XDG_CONFIG_HOME`.
    pub xdg_config_home: Option<String>,
    /// The value of `$HOME`.
    pub home: Option<String>,
}

/// Resolves the config file: `--config`, else `$MXTOKEN_CONFIG`, else
/// `$XDG_CONFIG_HOME/mxtoken/config.toml`, else `$HOME/.config/mxtoken/config.toml`.
pub fn resolve_config_path(lookup: &ConfigLookup) -> PathBuf {
    let non_empty = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(PathBuf::from);
    if let Some(p) = &lookup.explicit {
        return p.clone();
    }
    if let Some(p) = non_empty(&lookup.env_config) {
        return p;
    }
    let base = non_empty(&lookup.xdg_config_home)
        .or_else(|| non_empty(&lookup.home).map(|h| h.join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("mxtoken").join("config.toml")
}

/// The inputs of state-directory resolution (journal, audit log). Lookup
/// order, first hit wins: `--state-dir`, `$MXTOKEN_STATE_DIR`,
/// `$XDG_STATE_HOME/mxtoken`, `$HOME/.local/state/mxtoken`, `./.local/state/mxtoken`.
#[derive(Debug, Clone, Default)]
pub struct StateLookup {
    /// A directory given on the command line.
    pub explicit: Option<PathBuf>,
    /// The value of `$MXTOKEN_STATE_DIR`.
    pub env_state_dir: Option<String>,
    /// The value of `$XDG_STATE_HOME`.
    pub xdg_state_home: Option<String>,
    /// The value of `$HOME`.
    pub home: Option<String>,
}

/// Resolves the state directory; see [`StateLookup`] for the order. Empty
/// environment values count as unset.
pub fn resolve_state_dir(lookup: &StateLookup) -> PathBuf {
    let non_empty = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(PathBuf::from);
    if let Some(p) = &lookup.explicit {
        return p.clone();
    }
    if let Some(p) = non_empty(&lookup.env_state_dir) {
        return p;
    }
    if let Some(p) = non_empty(&lookup.xdg_state_home) {
        return p.join("mxtoken");
    }
    non_empty(&lookup.home)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".local/state/mxtoken")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_flag_env_xdg_tmp() {
        let mut l = SocketLookup {
            explicit: Some("/a.sock".into()),
            env_socket: Some("/b.sock".into()),
            xdg_runtime_dir: Some("/run/user/7".into()),
            uid: 7,
        };
        assert_eq!(resolve_socket_path(&l), PathBuf::from("/a.sock"));
        l.explicit = None;
        assert_eq!(resolve_socket_path(&l), PathBuf::from("/b.sock"));
        l.env_socket = Some(String::new());
        assert_eq!(
            resolve_socket_path(&l),
            PathBuf::from("/run/user/7/mxtoken/broker.sock")
        );
        l.xdg_runtime_dir = None;
        assert_eq!(
            resolve_socket_path(&l),
            PathBuf::from("/tmp/mxtoken-7/broker.sock")
        );
    }

    #[test]
    fn config_order_is_flag_env_xdg_home() {
        let mut l = ConfigLookup {
            explicit: Some("/a.toml".into()),
            env_config: Some("/b.toml".into()),
            xdg_config_home: Some("/x".into()),
            home: Some("/h".into()),
        };
        assert_eq!(resolve_config_path(&l), PathBuf::from("/a.toml"));
        l.explicit = None;
        assert_eq!(resolve_config_path(&l), PathBuf::from("/b.toml"));
        l.env_config = None;
        assert_eq!(
            resolve_config_path(&l),
            PathBuf::from("/x/mxtoken/config.toml")
        );
        l.xdg_config_home = Some(String::new());
        assert_eq!(
            resolve_config_path(&l),
            PathBuf::from("/h/.config/mxtoken/config.toml")
        );
    }
}
