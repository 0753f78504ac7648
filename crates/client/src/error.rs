//! Client errors.

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("network error: {0}")]
    Io(#[from] std::io::Error),
    /// The server answered with this protocol error code.
    #[error("the server refused with error {0}")]
    Server(u16),
    #[error("authentication failed: wrong account or password")]
    AuthenticationFailed,
    #[error("the server does not speak a dialect this client offers")]
    NoCommonDialect,
    #[error("unexpected reply from the server: {0}")]
    Protocol(String),
    #[error("the connection is closed")]
    Closed,
    #[error("timed out waiting for the server")]
    Timeout,
    #[error("TLS error: {0}")]
    Tls(String),
    #[error("file transfer: {0}")]
    Transfer(String),
}

impl ClientError {
    /// The protocol error code, if the server refused.
    pub fn code(&self) -> Option<u16> {
        match self {
            ClientError::Server(c) => Some(*c),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;
