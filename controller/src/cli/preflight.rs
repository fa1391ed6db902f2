//! Gathers what pre-flight judges (the registry's answer for each image
//! the plan writes, the boards' facts) and shows what it found.

use std::collections::BTreeMap;

use futures_util::StreamExt;
use reconciler_spec::Spec;
use serde::Serialize;

use super::CliError;
use crate::observed::Observed;
use crate::pipeline::Reached;
use crate::plan::Plan;
use crate::preflight::{self, Check, Finding, ImageLookup, Inputs};
use crate::swarm::Swarm;

/// How many images are asked about at once.
const REGISTRY_LOOKUPS_AT_ONCE: usize = 8;

/// What pre-flight found for a planned swarm.
#[derive(Debug, Default, Serialize)]
pub(super) struct Preflight {
    pub(super) findings: Vec<Finding>,
    /// Images no registry answered for, with Docker's reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) unchecked_images: Vec<UncheckedImage>,
}

#[derive(Debug, Serialize)]
pub(super) struct UncheckedImage {
    pub(super) image: String,
    pub(super) reason: String,
}

impl Preflight {
    /// Asks the registry about the plan's images and judges the facts.
    pub(super) async fn gather(
        swarm: &Swarm,
        spec: &Spec,
        observed: &Observed,
        plan: &Plan,
        reached: &Reached,
    ) -> Self {
        // A few at a time: each may be a round trip to a distant registry.
        let images: BTreeMap<String, ImageLookup> =
            futures_util::stream::iter(preflight::images_to_check(plan))
                .map(|image| async move {
                    let lookup = swarm.image_lookup(&image).await;
                    (image, lookup)
                })
                .buffer_unordered(REGISTRY_LOOKUPS_AT_ONCE)
                .collect()
                .await;
        let no_facts = BTreeMap::new();
        let facts = reached.boards.as_ref().map_or(&no_facts, |b| &b.facts);
        let findings = preflight::check(&Inputs {
            spec,
            observed,
            plan,
            facts,
            images: &images,
        });
        let unchecked_images = images
            .into_iter()
            .filter_map(|(image, lookup)| match lookup {
                ImageLookup::Unchecked { error } => Some(UncheckedImage {
                    image,
                    reason: error,
                }),
                _ => None,
            })
            .collect();
        Self {
            findings,
            unchecked_images,
        }
    }

    /// The section under the plan (empty when there is nothing to say).
    pub(super) fn text(&self) -> String {
        let unchecked: Vec<(String, String)> = self
            .unchecked_images
            .iter()
            .map(|u| (u.image.clone(), u.reason.clone()))
            .collect();
        preflight::text(&self.findings, &unchecked)
    }

    /// The error for blockers `allowed` does not let through.
    pub(super) fn refusal(&self, allowed: &[Check]) -> Result<(), CliError> {
        let blocking = preflight::blocking(&self.findings, allowed);
        if blocking.is_empty() {
            return Ok(());
        }
        let mut checks: Vec<String> = blocking
            .iter()
            .map(|f| f.check.as_str().to_string())
            .collect();
        checks.dedup();
        Err(CliError::Preflight {
            count: blocking.len(),
            checks,
        })
    }
}
