//! Where the broker's socket lives.
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
}
