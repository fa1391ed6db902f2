//! Commands on the boards over SSH: `facts`, `install`, `uninstall`.

use std::path::PathBuf;

use reconciler_spec::{LoadOptions, Spec};

use super::{load, CliError, Console, FactsArgs, InstallArgs, UninstallArgs, FACTS_TIMEOUT};

pub(super) async fn facts(
    args: FactsArgs,
    load_options: &LoadOptions,
    console: &mut Console<'_>,
) -> Result<u8, CliError> {
    let spec = load(&args.dir, load_options, console.err)?;
    let targets: Vec<_> = spec.nodes.values().map(crate::node::target_for).collect();
    let access = args.access.access(Some(args.connect_timeout));
    let options = crate::node::SshOptions {
        command_timeout: FACTS_TIMEOUT,
        ..access.ssh
    };
    let progress = std::sync::Arc::new(std::sync::Mutex::new(std::io::stderr()));
    let results = crate::node::gather_facts(targets, options, access.parallel, progress).await;
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    if args.json {
        let document: std::collections::BTreeMap<&str, serde_json::Value> = results
            .iter()
            .map(|(node, result)| {
                let value = match result {
                    Ok(facts) => serde_json::json!({ "facts": facts }),
                    Err(error) => {
                        serde_json::json!({ "error": error.to_string(), "kind": error.kind() })
                    }
                };
                (node.as_str(), value)
            })
            .collect();
        serde_json::to_writer_pretty(&mut *console.out, &document)?;
        writeln!(console.out)?;
    } else {
        write!(
            console.out,
            "{}",
            crate::node::facts::table(&spec, &results)
        )?;
    }
    Ok(u8::from(failed > 0))
}

/// The board `install` works on: `--node`, or the first manager by name.
fn install_target(
    spec: &Spec,
    node: Option<&str>,
) -> Result<crate::node::Target, crate::install::InstallError> {
    use crate::install::InstallError;
    let chosen = match node {
        Some(name) => spec
            .nodes
            .get(name)
            .ok_or_else(|| InstallError::UnknownNode(name.to_string()))?,
        None => spec
            .nodes
            .values()
            .find(|n| n.role == reconciler_spec::Role::Manager)
            .ok_or(InstallError::NoManager)?,
    };
    Ok(crate::node::target_for(chosen))
}

pub(super) async fn install(
    args: InstallArgs,
    age_identity_file: Option<PathBuf>,
    load_options: &LoadOptions,
    console: &mut Console<'_>,
) -> Result<u8, CliError> {
    if crate::source::url_has_credentials(&args.git) {
        return Err(CliError::CredentialsInUrl {
            url: crate::source::redact_url(&args.git),
        });
    }
    let plaintext_allowed = args.run_args.iter().any(|a| a == "--allow-plaintext-git");
    if crate::source::is_plaintext_remote(&args.git) && !plaintext_allowed {
        return Err(CliError::PlaintextGit {
            url: crate::source::redact_url(&args.git),
        });
    }
    let spec = load(&args.dir, load_options, console.err)?;
    // A policy that does not load would stop the controller on the board.
    args.policy.load()?;
    crate::runtime::page_token(args.page_token_file.as_deref())?;
    if let Some(file) = &args.verify_signatures {
        crate::source::signature::AllowedSigners::load(file)?;
    }
    let target = install_target(&spec, args.node.as_deref())?;
    let access = args.access.access(None);
    let session = crate::node::Session::connect(&target, access.ssh)
        .await
        .map_err(crate::install::InstallError::from)?;
    let options = crate::install::InstallOptions {
        git: args.git,
        branch: args.branch,
        path: args.path,
        listen: args.listen,
        webhook_secret_file: args.webhook_secret_file,
        git_ssh_key: args.git_ssh_key,
        git_username: args.git_username,
        git_password_file: args.git_password_file,
        age_identity_file,
        policy_file: args.policy.file,
        page_token_file: args.page_token_file,
        allowed_signers_file: args.verify_signatures,
        binaries: args.binaries,
        init: args.init,
        run_args: args.run_args,
    };
    let result = crate::install::install(&session, &options, args.ready_timeout).await;
    session.close().await;
    let report = result?;
    writeln!(console.out, "{report}")?;
    writeln!(
        console.out,
        "node {}: the controller is ready (/readyz answered 200 on the board)",
        report.node
    )?;
    Ok(0)
}

pub(super) async fn uninstall(
    args: UninstallArgs,
    load_options: &LoadOptions,
    console: &mut Console<'_>,
) -> Result<u8, CliError> {
    let spec = load(&args.dir, load_options, console.err)?;
    let target = install_target(&spec, args.node.as_deref())?;
    let session = crate::node::Session::connect(&target, args.access.access(None).ssh)
        .await
        .map_err(crate::install::InstallError::from)?;
    let result = crate::install::uninstall(&session, args.init).await;
    session.close().await;
    writeln!(console.out, "{}", result?)?;
    Ok(0)
}
