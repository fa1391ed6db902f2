//! What the registry says about an image, asked through the manager's
//! Docker (its distribution endpoint, as `docker service create` does to
//! pin a digest): whether it exists and for which platforms.

use super::Swarm;
use crate::preflight::{ImageLookup, Platform};

impl Swarm {
    /// The registry's answer for `image`. Never an error: a registry that
    /// cannot be reached leaves the image unchecked, as the docker CLI only
    /// warns then.
    pub async fn image_lookup(&self, image: &str) -> ImageLookup {
        // Built or imported here and never pushed or pulled: no registry
        // has it, so none is asked.
        if let Ok(local) = self.docker.inspect_image(image).await {
            let repository = repository_of(image);
            let from_registry = local
                .repo_digests
                .iter()
                .flatten()
                .any(|digest| repository_of(digest) == repository);
            if !from_registry {
                return ImageLookup::Local;
            }
        }
        match self.docker.inspect_registry_image(image, None).await {
            Ok(inspect) => ImageLookup::Platforms {
                platforms: inspect
                    .platforms
                    .into_iter()
                    .map(|p| Platform {
                        os: p.os.unwrap_or_default(),
                        architecture: p.architecture.unwrap_or_default(),
                        variant: p.variant.filter(|v| !v.is_empty()),
                    })
                    .collect(),
            },
            // The registry answered: no such repository or tag.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404,
                message,
            }) => ImageLookup::Missing { error: message },
            Err(error) => ImageLookup::Unchecked {
                error: unchecked_reason(&error),
            },
        }
    }
}

/// Docker's message for an unreachable registry, without bollard's wrapping.
fn unchecked_reason(error: &bollard::errors::Error) -> String {
    match error {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// An image reference without its tag or digest (`host:5000/app:1` →
/// `host:5000/app`): a port's colon comes before the last slash.
fn repository_of(reference: &str) -> &str {
    let reference = reference
        .split_once('@')
        .map_or(reference, |(name, _)| name);
    let last_part = reference.rfind('/').map_or(0, |slash| slash + 1);
    match reference[last_part..].rfind(':') {
        Some(colon) => &reference[..last_part + colon],
        None => reference,
    }
}

#[cfg(test)]
mod tests {
    use super::repository_of;

    #[test]
    fn a_reference_loses_its_tag_and_digest_but_not_its_port() {
        assert_eq!(repository_of("local/busybox:1"), "local/busybox");
        assert_eq!(
            repository_of("127.0.0.1:5077/busybox:1"),
            "127.0.0.1:5077/busybox"
        );
        assert_eq!(
            repository_of("127.0.0.1:5077/busybox"),
            "127.0.0.1:5077/busybox"
        );
        assert_eq!(repository_of("nginx@sha256:abc"), "nginx");
        assert_eq!(repository_of("nginx:1.27@sha256:abc"), "nginx");
    }
}
