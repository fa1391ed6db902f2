//! Why Swarm could not run a service's task, and whether waiting can change
//! it. Docker says why in the task's status (`Err`): the executor's words
//! for a rejected task, the scheduler's for a pending one. Some reasons are
//! about the node or the spec and stay until a person acts; `apply` gives up
//! on those at once instead of waiting out its timeout.

/// A task error, by what it means for waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskFailure {
    /// The node has no such image and could not pull it ("No such image:
    /// x"): a typo in the name or tag, or a registry the boards cannot reach.
    NoSuchImage,
    /// A bind mount's source folder is missing on the node.
    BindSourceMissing,
    /// The scheduler found no node for the task: its constraints, resources
    /// or host-mode ports fit none ("no suitable node (...)").
    NoSuitableNode,
    /// A host-mode port the task publishes is held on every node it may use.
    HostPortInUse,
    /// Anything else (a crash, a failed health check, a slow pull): Swarm
    /// retries and it may pass.
    Passing,
}

impl TaskFailure {
    /// Reads Docker's task error.
    pub fn of(error: &str) -> Self {
        if error.contains("host-mode port already in use") {
            Self::HostPortInUse
        } else if error.starts_with("no suitable node") {
            Self::NoSuitableNode
        } else if error.starts_with("No such image") {
            Self::NoSuchImage
        } else if error.contains("bind source path does not exist") {
            Self::BindSourceMissing
        } else {
            Self::Passing
        }
    }

    /// True when waiting will not change it: only the spec, a board or
    /// another service changing will.
    pub fn is_lasting(self) -> bool {
        self != Self::Passing
    }

    /// What a person does about it.
    pub fn hint(self) -> &'static str {
        match self {
            Self::NoSuchImage => "check the image's name and tag, and that the boards can pull it (`docker pull IMAGE` on one)",
            Self::BindSourceMissing => "create the folder on every board the service may run on, or constrain the service to the boards that have it",
            Self::NoSuitableNode => "no node meets the service's constraints or resource reservations: compare them with the nodes' labels, roles and free memory (`docker node ls`, `docker node inspect`)",
            Self::HostPortInUse => "another task holds the port on the boards the service may use: free it, publish another port, or allow more boards",
            Self::Passing => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TaskFailure;

    /// Docker 20.10's own words, from the executor and the scheduler.
    #[test]
    fn docker_task_errors_are_read_by_what_waiting_can_do() {
        let cases = [
            ("No such image: local/typo:1", TaskFailure::NoSuchImage),
            (
                "invalid mount config for type \"bind\": bind source path does not exist: /mnt/usb",
                TaskFailure::BindSourceMissing,
            ),
            (
                "no suitable node (scheduling constraints not satisfied on 1 node)",
                TaskFailure::NoSuitableNode,
            ),
            (
                "no suitable node (insufficient resources on 1 node)",
                TaskFailure::NoSuitableNode,
            ),
            (
                "no suitable node (host-mode port already in use on 1 node)",
                TaskFailure::HostPortInUse,
            ),
            ("task: non-zero exit (1)", TaskFailure::Passing),
            (
                "starting container failed: OCI runtime create failed",
                TaskFailure::Passing,
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(TaskFailure::of(error), expected, "{error}");
            assert_eq!(expected.is_lasting(), expected != TaskFailure::Passing);
        }
    }
}
