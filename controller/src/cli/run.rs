//! `run`: the long-running controller, from its flags.

use reconciler_spec::LoadOptions;

use super::{CliError, RunArgs};

pub(super) async fn run(args: RunArgs, load: LoadOptions) -> Result<u8, CliError> {
    use crate::source::signature::AllowedSigners;
    use crate::source::{DirSource, GitRef, GitSource, Source};
    if args.apply_timeout >= args.lease_ttl {
        return Err(CliError::LeaseTooShort {
            apply_timeout: args.apply_timeout,
            lease_ttl: args.lease_ttl,
        });
    }
    let source = match (&args.dir, &args.git) {
        (Some(dir), _) => Source::Dir(DirSource::new(dir.clone())),
        (None, None) => return Err(CliError::NoSource),
        (None, Some(url)) => {
            if crate::source::is_plaintext_remote(url) && !args.allow_plaintext_git {
                return Err(CliError::PlaintextGit {
                    url: crate::source::redact_url(url),
                });
            }
            if crate::source::url_has_credentials(url) {
                tracing::warn!(
                    url = %crate::source::redact_url(url),
                    "the git URL carries credentials, which `ps` shows to every user of this machine; prefer RECONCILER_GIT_USERNAME and RECONCILER_GIT_PASSWORD_FILE"
                );
            }
            let reference = match (&args.tag, &args.commit) {
                (Some(tag), _) => GitRef::Tag(tag.clone()),
                (None, Some(commit)) => GitRef::Commit(commit.clone()),
                (None, None) => GitRef::Branch(args.branch.clone()),
            };
            let source = GitSource::new(url.clone(), reference, &args.path, &args.cache_dir);
            Source::Git(match &args.verify_signatures {
                Some(file) => source.verifying(AllowedSigners::load(file)?),
                None => source,
            })
        }
    };
    let options = crate::runtime::RunOptions {
        reach: args.boards.reach(&args.docker),
        listen: args.listen,
        webhook_secret: crate::runtime::webhook_secret(args.webhook_secret_file.as_deref())?,
        observe: args.observe,
        suspend: args.suspend,
        interval: args.interval,
        holder: args
            .holder_id
            .clone()
            .unwrap_or_else(crate::runtime::default_holder),
        lease_ttl: args.lease_ttl,
        apply_timeout: args.apply_timeout,
        facts_max_age: args.facts_max_age,
        fetch_timeout: args.fetch_timeout,
        docker_timeout: args.docker.docker_timeout,
        allow_other_swarm: args.docker.allow_other_swarm,
        allow_hosts: args.allow_hosts.clone(),
        ssh_paths: crate::runtime::SshPaths {
            identity: args.ssh_identity.clone(),
            known_hosts: args.known_hosts.clone(),
        },
        policy: args.policy.load()?,
        page_token: crate::runtime::page_token(args.page_token_file.as_deref())?,
        protected: vec![
            crate::node::expand_home(&args.ssh_identity),
            crate::node::expand_home(&args.known_hosts),
            args.cache_dir.clone(),
        ],
        load,
    };
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("signal received: finishing");
        let _ = stop.send(true);
    });
    crate::runtime::run(source, options, shutdown).await?;
    Ok(0)
}

/// SIGTERM or SIGINT (Ctrl-C).
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
