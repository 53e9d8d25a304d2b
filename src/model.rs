//! Data shared by the pages (compiled to wasm) and the server.

use serde::{Deserialize, Serialize};

/// The logged-in account as the pages and `GET /api/v1/me` show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    /// Short public id, the first half of every stream id (`{accountId}/{streamName}`).
    pub account_id: String,
    pub email: String,
}

/// Shortest accepted password, in characters (PRODUCT.md §2).
pub const PASSWORD_MIN_CHARS: usize = 8;
/// Longest accepted password, in bytes: bounds the work one request can ask of argon2.
pub const PASSWORD_MAX_BYTES: usize = 1024;
/// Longest accepted email address, in bytes (RFC 5321's path limit).
pub const EMAIL_MAX_BYTES: usize = 254;

/// A rule broken by one field of a request: the server answers it as 422 and the pages show it
/// beside the form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self { field, message: message.into() }
    }
}

/// Trims and lower-cases an email address and checks its shape.
///
/// Emails are unique case-insensitively (PRODUCT.md §2), so the account keeps the lower-cased form.
/// The check is deliberately loose (one `@`, something on both sides, a dot-free-or-not domain
/// without spaces): only a confirmation mail could prove an address, and we do not send mail.
pub fn normalize_email(raw: &str) -> Result<String, FieldError> {
    let email = raw.trim().to_lowercase();
    if email.is_empty() {
        return Err(FieldError::new("email", "email is required"));
    }
    if email.len() > EMAIL_MAX_BYTES {
        return Err(FieldError::new("email", format!("email must be at most {EMAIL_MAX_BYTES} bytes")));
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err(FieldError::new("email", "email must contain an @"));
    };
    if local.is_empty() || domain.is_empty() || domain.contains('@') {
        return Err(FieldError::new("email", "email must look like name@example.com"));
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(FieldError::new("email", "email must not contain spaces"));
    }
    Ok(email)
}

/// Checks a new password against the length rules of PRODUCT.md §2.
pub fn check_new_password(password: &str) -> Result<(), FieldError> {
    if password.len() > PASSWORD_MAX_BYTES {
        return Err(FieldError::new("password", format!("password must be at most {PASSWORD_MAX_BYTES} bytes")));
    }
    if password.chars().count() < PASSWORD_MIN_CHARS {
        return Err(FieldError::new("password", format!("password must be at least {PASSWORD_MIN_CHARS} characters")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(normalize_email("  Alice@Example.COM ").unwrap(), "alice@example.com");
    }

    #[test]
    fn malformed_emails_name_the_field() {
        for bad in ["", "alice", "@example.com", "alice@", "a@b@c", "al ice@example.com"] {
            let err = normalize_email(bad).unwrap_err();
            assert_eq!(err.field, "email", "{bad:?}");
        }
        assert!(normalize_email(&format!("{}@x.io", "a".repeat(300))).is_err());
    }

    #[test]
    fn password_length_is_counted_in_chars_and_capped_in_bytes() {
        assert!(check_new_password("1234567").is_err());
        assert!(check_new_password("12345678").is_ok());
        // 8 characters but 16 bytes: long enough.
        assert!(check_new_password("éééééééé").is_ok());
        assert!(check_new_password(&"x".repeat(PASSWORD_MAX_BYTES)).is_ok());
        assert!(check_new_password(&"x".repeat(PASSWORD_MAX_BYTES + 1)).is_err());
    }
}
