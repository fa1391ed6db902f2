//! Verifying git push webhooks from GitHub, Gitea/Forgejo and GitLab.
//!
//! Pure functions over headers and body: the HTTP handler asks [`verify`] and,
//! for an accepted push, only enqueues a trigger. GitHub and Gitea sign the body
//! with HMAC-SHA256 and a shared secret; GitLab sends the secret as a token.
//! Every comparison is constant-time.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Which forge sent the hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    GitHub,
    Gitea,
    GitLab,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::GitHub => "github",
            Provider::Gitea => "gitea",
            Provider::GitLab => "gitlab",
        }
    }
}

/// What to do with a verified hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A push: fetch now.
    Push(Provider),
    /// Authentic but not a push (GitHub's `ping`, a tag event we ignore, ...).
    Ignored(Provider, String),
}

/// Why a hook was refused; every variant is answered with 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    /// None of the three forges' signature headers is present.
    #[error("no signature header (X-Hub-Signature-256, X-Gitea-Signature or X-Gitlab-Token)")]
    Unsigned,
    /// A signature header that is not `sha256=<hex>` (GitHub) or hex (Gitea).
    #[error("malformed signature header")]
    Malformed,
    /// The body was signed with another secret, or changed on the way.
    #[error("signature does not match the body and the configured secret")]
    BadSignature,
    /// The controller was started without a secret: no hook can be verified.
    #[error("webhooks are disabled: no secret is configured")]
    NoSecret,
}

/// The webhook secret. `Debug` shows its length only, so the structures
/// holding it (`RunOptions`, the HTTP state) can be logged or printed
/// without leaking it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The bytes, for computing and comparing signatures only.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebhookSecret({} bytes)", self.0.len())
    }
}

/// Checks a hook. `header` looks a header up by lower-case name.
pub fn verify(
    header: impl Fn(&str) -> Option<String>,
    body: &[u8],
    secret: Option<&[u8]>,
) -> Result<Verdict, HookError> {
    let secret = secret.ok_or(HookError::NoSecret)?;
    let (provider, event) = if let Some(signature) = header("x-hub-signature-256") {
        let hex = signature
            .strip_prefix("sha256=")
            .ok_or(HookError::Malformed)?;
        check_hmac(secret, body, hex)?;
        (
            Provider::GitHub,
            header("x-github-event").unwrap_or_default(),
        )
    } else if let Some(hex) = header("x-gitea-signature").or_else(|| header("x-forgejo-signature"))
    {
        check_hmac(secret, body, &hex)?;
        let event = header("x-gitea-event")
            .or_else(|| header("x-forgejo-event"))
            .unwrap_or_default();
        (Provider::Gitea, event)
    } else if let Some(token) = header("x-gitlab-token") {
        if !same_secret(token.as_bytes(), secret) {
            return Err(HookError::BadSignature);
        }
        (
            Provider::GitLab,
            header("x-gitlab-event").unwrap_or_default(),
        )
    } else {
        return Err(HookError::Unsigned);
    };
    let is_push = matches!(event.to_ascii_lowercase().as_str(), "push" | "push hook");
    Ok(if is_push {
        Verdict::Push(provider)
    } else {
        Verdict::Ignored(provider, event)
    })
}

fn check_hmac(secret: &[u8], body: &[u8], hex: &str) -> Result<(), HookError> {
    let expected = hex::decode(hex.trim()).map_err(|_| HookError::Malformed)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| HookError::NoSecret)?;
    mac.update(body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&expected)
        .map_err(|_| HookError::BadSignature)
}

/// Signs a body as GitHub and Gitea do; for tests and tooling.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        // HMAC accepts keys of any length; this arm is unreachable in practice.
        Err(_) => return String::new(),
    };
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Compares a token with the secret in constant time, whatever their
/// lengths: their SHA-256 digests are compared, so not even the secret's
/// length leaks through the time taken (a byte compare stops at a length
/// mismatch).
fn same_secret(token: &[u8], secret: &[u8]) -> bool {
    use sha2::Digest as _;
    use subtle::ConstantTimeEq as _;
    Sha256::digest(token).ct_eq(&Sha256::digest(secret)).into()
}

/// The push bodies accepted lately, by digest: the forges sign the body
/// alone, so a captured delivery could be sent again and again. A body seen
/// before is a replay (or the forge's own redelivery) and triggers nothing.
#[derive(Debug, Default)]
pub struct Deliveries {
    order: std::collections::VecDeque<[u8; 32]>,
    seen: std::collections::HashSet<[u8; 32]>,
}

/// How many accepted bodies are remembered.
pub const REMEMBERED_DELIVERIES: usize = 1024;

impl Deliveries {
    /// Records a verified push body; `false` when it was accepted before.
    pub fn first_time(&mut self, body: &[u8]) -> bool {
        use sha2::Digest as _;
        let digest: [u8; 32] = Sha256::digest(body).into();
        if !self.seen.insert(digest) {
            return false;
        }
        self.order.push_back(digest);
        if self.order.len() > REMEMBERED_DELIVERIES {
            if let Some(oldest) = self.order.pop_front() {
                self.seen.remove(&oldest);
            }
        }
        true
    }
}

/// Refused webhooks are said in the log at most once a minute, with how
/// many were refused since: a flood of bad requests must not flood the
/// log (the metric counts every one).
#[derive(Debug, Default)]
pub struct RefusalLog {
    said_at: Option<std::time::Instant>,
    unsaid: u64,
}

/// The least time between two log lines about refused webhooks.
pub const REFUSAL_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

impl RefusalLog {
    /// Whether to log this refusal at `now`; `Some(n)`: yes, and `n` were
    /// refused without a word since the last line.
    pub fn say(&mut self, now: std::time::Instant) -> Option<u64> {
        match self.said_at {
            Some(at) if now.saturating_duration_since(at) < REFUSAL_LOG_EVERY => {
                self.unsaid += 1;
                None
            }
            _ => {
                self.said_at = Some(now);
                Some(std::mem::take(&mut self.unsaid))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn regression_a_replayed_push_body_is_not_accepted_twice() {
        let mut deliveries = super::Deliveries::default();
        assert!(deliveries.first_time(b"push 1"));
        assert!(!deliveries.first_time(b"push 1"));
        assert!(deliveries.first_time(b"push 2"));
        for i in 0..super::REMEMBERED_DELIVERIES {
            assert!(deliveries.first_time(format!("filler {i}").as_bytes()));
        }
        // Forgotten once a thousand others came after it.
        assert!(deliveries.first_time(b"push 1"));
    }

    #[test]
    fn regression_refused_webhooks_are_logged_at_most_once_a_minute() {
        let mut log = super::RefusalLog::default();
        let t0 = std::time::Instant::now();
        assert_eq!(log.say(t0), Some(0));
        for i in 1..100 {
            assert_eq!(log.say(t0 + std::time::Duration::from_millis(i)), None);
        }
        assert_eq!(log.say(t0 + super::REFUSAL_LOG_EVERY), Some(99));
    }

    use super::*;

    fn headers<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    /// GitHub's documented example ("Validating webhook deliveries"): this
    /// secret and payload must give exactly this signature.
    #[test]
    fn githubs_documented_signature_example_is_accepted() {
        let secret = b"It's a Secret to Everybody";
        let payload = b"Hello, World!";
        let documented = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(format!("sha256={}", sign(secret, payload)), documented);
        let verdict = verify(
            headers(&[
                ("x-hub-signature-256", documented),
                ("x-github-event", "push"),
            ]),
            payload,
            Some(secret),
        );
        assert_eq!(verdict, Ok(Verdict::Push(Provider::GitHub)));
        // One byte changed in the payload, or the secret, and it is refused.
        let tampered = verify(
            headers(&[("x-hub-signature-256", documented)]),
            b"Hello, World?",
            Some(secret),
        );
        assert_eq!(tampered, Err(HookError::BadSignature));
        let other_secret = verify(
            headers(&[("x-hub-signature-256", documented)]),
            payload,
            Some(b"It's a Secret to Everybody!"),
        );
        assert_eq!(other_secret, Err(HookError::BadSignature));
    }

    const SECRET: &[u8] = b"s3cret";
    const BODY: &[u8] = br#"{"ref":"refs/heads/main"}"#;

    #[test]
    fn github_push_with_a_good_signature_is_accepted() {
        let signature = format!("sha256={}", sign(SECRET, BODY));
        let verdict = verify(
            headers(&[
                ("x-hub-signature-256", &signature),
                ("x-github-event", "push"),
            ]),
            BODY,
            Some(SECRET),
        );
        assert_eq!(verdict, Ok(Verdict::Push(Provider::GitHub)));
        let ping = verify(
            headers(&[
                ("x-hub-signature-256", &signature),
                ("x-github-event", "ping"),
            ]),
            BODY,
            Some(SECRET),
        );
        assert_eq!(ping, Ok(Verdict::Ignored(Provider::GitHub, "ping".into())));
    }

    #[test]
    fn gitea_and_gitlab_are_accepted() {
        let signature = sign(SECRET, BODY);
        let gitea = verify(
            headers(&[("x-gitea-signature", &signature), ("x-gitea-event", "push")]),
            BODY,
            Some(SECRET),
        );
        assert_eq!(gitea, Ok(Verdict::Push(Provider::Gitea)));
        let gitlab = verify(
            headers(&[
                ("x-gitlab-token", "s3cret"),
                ("x-gitlab-event", "Push Hook"),
            ]),
            BODY,
            Some(SECRET),
        );
        assert_eq!(gitlab, Ok(Verdict::Push(Provider::GitLab)));
        let names: Vec<&str> = [Provider::GitHub, Provider::Gitea, Provider::GitLab]
            .into_iter()
            .map(Provider::as_str)
            .collect();
        assert_eq!(names, ["github", "gitea", "gitlab"]);
    }

    #[test]
    fn wrong_missing_or_malformed_signatures_are_refused() {
        let wrong = format!("sha256={}", sign(b"other", BODY));
        assert_eq!(
            verify(
                headers(&[("x-hub-signature-256", &wrong)]),
                BODY,
                Some(SECRET)
            ),
            Err(HookError::BadSignature)
        );
        let tampered = format!("sha256={}", sign(SECRET, b"{}"));
        assert_eq!(
            verify(
                headers(&[("x-hub-signature-256", &tampered)]),
                BODY,
                Some(SECRET)
            ),
            Err(HookError::BadSignature)
        );
        assert_eq!(
            verify(headers(&[]), BODY, Some(SECRET)),
            Err(HookError::Unsigned)
        );
        assert_eq!(
            verify(
                headers(&[("x-hub-signature-256", "md5=00")]),
                BODY,
                Some(SECRET)
            ),
            Err(HookError::Malformed)
        );
        assert_eq!(
            verify(headers(&[("x-gitea-signature", "zz")]), BODY, Some(SECRET)),
            Err(HookError::Malformed)
        );
        // Same length, one byte off; and two bytes off by the same bits
        // (which an XOR-accumulating comparison would let through).
        for guess in ["s3cre", "s3creT", "r2cret"] {
            assert_eq!(
                verify(headers(&[("x-gitlab-token", guess)]), BODY, Some(SECRET)),
                Err(HookError::BadSignature),
                "{guess}"
            );
        }
        assert_eq!(
            verify(headers(&[("x-gitlab-token", "s3cret")]), BODY, None),
            Err(HookError::NoSecret)
        );
    }
}

#[cfg(test)]
mod secret_tests {
    use super::WebhookSecret;

    #[test]
    fn regression_debug_of_the_run_options_never_shows_the_webhook_secret() {
        let secret = WebhookSecret::new(b"hunter2-webhook".to_vec());
        let shown = format!("{:?}", Some(secret.clone()));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("15 bytes"), "{shown}");
        assert_eq!(secret.expose(), b"hunter2-webhook");
    }
}
