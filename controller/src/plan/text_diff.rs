//! A line diff of a board file, as `plan` shows it: the board's text
//! against the spec's, changed lines with a line of context, like a
//! unified diff without its headers. Pure and bounded: the board's side is
//! at most 64 KiB (`node::config::MAX_DIFF_BYTES`).

/// The most lines compared; beyond it the diff says only that they differ.
const MAX_LINES: usize = 2000;
/// Unchanged lines shown around a change.
const CONTEXT: usize = 1;

/// `old` → `new` as `-`/`+`/` ` lines; `None` when either is not text or
/// too long to compare.
pub fn diff(old: &[u8], new: &[u8]) -> Option<Vec<String>> {
    let old = std::str::from_utf8(old).ok()?;
    let new = std::str::from_utf8(new).ok()?;
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    if a.len() > MAX_LINES || b.len() > MAX_LINES {
        return None;
    }
    let ops = operations(&a, &b);
    let mut shown = vec![false; ops.len()];
    for (i, op) in ops.iter().enumerate() {
        if !matches!(op, Op::Same(_)) {
            let from = i.saturating_sub(CONTEXT);
            let to = (i + CONTEXT + 1).min(ops.len());
            shown[from..to].iter_mut().for_each(|s| *s = true);
        }
    }
    let mut lines = Vec::new();
    let mut skipped = false;
    for (op, show) in ops.iter().zip(shown) {
        if !show {
            skipped = true;
            continue;
        }
        if skipped && !lines.is_empty() {
            lines.push("  ...".to_string());
        }
        skipped = false;
        lines.push(match op {
            Op::Same(line) => format!("  {line}"),
            Op::Removed(line) => format!("- {line}"),
            Op::Added(line) => format!("+ {line}"),
        });
    }
    if old.ends_with('\n') != new.ends_with('\n') && !old.is_empty() && !new.is_empty() {
        lines.push("  (the final newline differs)".to_string());
    }
    Some(lines)
}

enum Op<'a> {
    Same(&'a str),
    Removed(&'a str),
    Added(&'a str),
}

/// The longest common subsequence's edit script, in order.
fn operations<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<Op<'a>> {
    // lengths[i][j]: the LCS of a[i..] and b[j..].
    let mut lengths = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lengths[i][j] = if a[i] == b[j] {
                lengths[i + 1][j + 1] + 1
            } else {
                lengths[i + 1][j].max(lengths[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut ops = Vec::new();
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push(Op::Same(a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lengths[i + 1][j] >= lengths[i][j + 1]) {
            ops.push(Op::Removed(a[i]));
            i += 1;
        } else {
            ops.push(Op::Added(b[j]));
            j += 1;
        }
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::diff;

    #[test]
    fn changed_lines_with_their_context() {
        let old = "a\nb\nc\nd\ne\nf\n";
        let new = "a\nb\nC\nd\ne\nf\ng\n";
        assert_eq!(
            diff(old.as_bytes(), new.as_bytes()),
            Some(vec![
                "  b".to_string(),
                "- c".into(),
                "+ C".into(),
                "  d".into(),
                "  ...".into(),
                "  f".into(),
                "+ g".into(),
            ])
        );
        assert_eq!(diff(b"x\n", b"x\n"), Some(vec![]));
        assert_eq!(diff(b"\xff", b"x"), None);
    }
}
