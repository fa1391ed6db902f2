//! Values from the spec or a board, made safe to put into a root shell script.

/// `text` as one single-quoted shell word: `it's` → `'it'\''s'`. Whatever the
/// spec says (an address, a user name), the shell sees one literal argument.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run through a real `sh`: what comes out is exactly what went in.
    #[test]
    fn a_quoted_word_reaches_the_command_unchanged() {
        for text in [
            "10.0.0.1",
            "pi",
            "it's",
            "a b",
            "$(touch /tmp/pwned)",
            "`id`",
            "x; rm -rf /",
            "'",
            "",
        ] {
            let output = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", quote(text)))
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
            assert_eq!(output.ok().as_deref(), Some(text), "{text}");
        }
    }
}
