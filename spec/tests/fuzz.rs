//! A bounded mutation fuzzer for the spec loader: every file of the
//! bad-spec corpus, the compose corpus and the examples is mutated at
//! random (a fixed seed per run, printed, so a failure replays) and loaded.
//! No input may panic the loader; every one must load or be refused. The
//! run is bounded by `FUZZ_ITERATIONS` (default 4000) and prints how long
//! the slowest input took, for the note — timings are reported, not
//! asserted.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A small xorshift generator: deterministic for a seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).unwrap_or(0)
    }
}

/// Every spec of the corpora, as (files) sets loadable with `load_files`.
fn seeds() -> Vec<Vec<(PathBuf, Vec<u8>)>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut specs = Vec::new();
    for folder in ["spec/tests/bad-specs", "examples"] {
        for entry in std::fs::read_dir(root.join(folder))
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(files) = reconciler_spec::read_dir_files(&entry.path()) {
                specs.push(files);
            }
        }
    }
    // Compose corpus stacks, each wrapped in a one-stack spec.
    for entry in std::fs::read_dir(root.join("tests/compose-corpus"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let mut files = vec![(
            PathBuf::from("spec.toml"),
            b"[cluster]\nname = \"f\"\n[stack.s]\ncompose = \"stack/docker-stack.yml\"\n".to_vec(),
        )];
        for file in std::fs::read_dir(entry.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(bytes) = std::fs::read(file.path()) {
                files.push((PathBuf::from("stack").join(file.file_name()), bytes));
            }
        }
        specs.push(files);
    }
    specs
}

/// Fragments that reach deep parser paths when spliced in.
const SPLICES: [&str; 16] = [
    "[",
    "]",
    "{",
    "}",
    "${",
    "${A:-${B:-",
    "\"",
    "'",
    "\n",
    "=",
    ":",
    "- ",
    "\u{0}",
    "é✓",
    "[[service.x]]\n",
    "{% for i in range(100) %}",
];

fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    for _ in 0..=rng.below(4) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(6) {
            0 if !bytes.is_empty() => {
                let i = at.min(bytes.len() - 1);
                bytes[i] ^= 1 << rng.below(8);
            }
            1 => {
                let splice = SPLICES[rng.below(SPLICES.len())].as_bytes();
                bytes.splice(at..at, splice.iter().copied());
            }
            2 => {
                let end = (at + rng.below(64)).min(bytes.len());
                bytes.drain(at..end);
            }
            3 if !bytes.is_empty() => {
                // Duplicate a chunk: repeated keys and entries.
                let start = rng.below(bytes.len());
                let end = (start + rng.below(200)).min(bytes.len());
                let chunk: Vec<u8> = bytes[start..end].to_vec();
                bytes.splice(at..at, chunk);
            }
            4 => {
                let digits = rng.next().to_string();
                bytes.splice(at..at, digits.bytes());
            }
            _ => {
                let splice = SPLICES[rng.below(SPLICES.len())].repeat(rng.below(100) + 1);
                bytes.splice(at..at, splice.bytes());
            }
        }
    }
}

#[test]
fn mutated_specs_load_or_are_refused_and_never_panic() {
    let seeds = seeds();
    assert!(seeds.len() > 100, "only {} seed specs", seeds.len());
    let iterations: usize = std::env::var("FUZZ_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(4000);
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_secs())
                | 1
        });
    println!("fuzz: seed {seed}, {iterations} inputs (FUZZ_SEED={seed} replays)");
    let mut rng = Rng(seed);
    let mut slowest = Duration::ZERO;
    let (mut loaded, mut refused) = (0, 0);
    for iteration in 0..iterations {
        let mut files = seeds[rng.below(seeds.len())].clone();
        let index = rng.below(files.len());
        mutate(&mut rng, &mut files[index].1);
        let shown = files[index].0.display().to_string();
        let started = Instant::now();
        let result = std::panic::catch_unwind(|| reconciler_spec::load_files(files.clone()));
        slowest = slowest.max(started.elapsed());
        match result {
            Ok(Ok(_)) => loaded += 1,
            Ok(Err(_)) => refused += 1,
            Err(_) => panic!(
                "the loader panicked on input {iteration} (seed {seed}), a mutation of {shown}"
            ),
        }
    }
    println!("fuzz: {loaded} loaded, {refused} refused, slowest {slowest:?}");
    assert_eq!(loaded + refused, iterations);
}
