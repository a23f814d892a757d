//! Client-side authentication: credentials and the `Authorization: Basic` header. The token
//! flow (a registry's `WWW-Authenticate` challenge, then its token endpoint) is in
//! [`crate::Client`].

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::error::{RegistryError, Result};

/// Registry credentials.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// User name and password (or token used as a password).
    Basic {
        /// The user.
        user: String,
        /// The password.
        password: String,
    },
    /// An identity token (sent as the refresh token) or a bearer token.
    Token(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { user, .. } => write!(f, "Basic({user}:***)"),
            Credentials::Token(_) => write!(f, "Token(***)"),
        }
    }
}

impl Credentials {
    /// Parse `user:password`.
    pub fn parse(text: &str) -> Result<Credentials> {
        let (user, password) = text.split_once(':').ok_or_else(|| {
            RegistryError::Invalid("credentials must be USER:PASSWORD".to_string())
        })?;
        Ok(Credentials::Basic {
            user: user.to_string(),
            password: password.to_string(),
        })
    }
}

/// An `Authorization: Basic ...` value.
pub fn basic_header(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}
