//! A spec file's text, kept so byte spans can be turned into line:column.

use std::ops::Range;
use std::path::PathBuf;

use crate::diagnostic::{Diagnostic, Location, Position};

/// Where a generated text's byte ranges came from: the file the user wrote,
/// and the place in it of each range.
#[derive(Debug, Default)]
pub(crate) struct GeneratedFrom {
    pub file: PathBuf,
    pub places: Vec<(Range<usize>, Position)>,
}

#[derive(Debug)]
pub(crate) struct SourceFile {
    /// Path relative to the spec directory, as shown to users.
    pub path: PathBuf,
    pub text: String,
    line_starts: Vec<usize>,
    /// For generated text (a translated compose file): which place of the
    /// file the user wrote each byte range came from, so problems found in
    /// the generated text point there.
    origins: GeneratedFrom,
}

impl SourceFile {
    pub(crate) fn new(path: PathBuf, text: String) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self {
            path,
            text,
            line_starts,
            origins: GeneratedFrom::default(),
        }
    }

    /// Generated text whose byte ranges came from `origins`.
    pub(crate) fn generated(path: PathBuf, text: String, origins: GeneratedFrom) -> Self {
        Self {
            origins,
            ..Self::new(path, text)
        }
    }

    /// The location of a byte offset; columns count characters, not bytes.
    pub(crate) fn location(&self, offset: usize) -> Location {
        let origins = &self.origins;
        if let Some((_, at)) = origins.places.iter().find(|(r, _)| r.contains(&offset)) {
            return Location {
                file: origins.file.clone(),
                line: at.line,
                column: at.column,
            };
        }
        let offset = offset.min(self.text.len());
        let line_index = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.line_starts.get(line_index).copied().unwrap_or(0);
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        Location {
            file: self.path.clone(),
            line: line_index + 1,
            column,
        }
    }

    pub(crate) fn span_location(&self, span: &Range<usize>) -> Location {
        self.location(span.start)
    }

    pub(crate) fn error(&self, span: &Range<usize>, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(self.span_location(span), message)
    }

    /// A location for problems that concern the file as a whole.
    pub(crate) fn start(&self) -> Location {
        self.location(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_one_based_lines_and_columns() {
        let file = SourceFile::new("a.toml".into(), "ab\ncdé\nf".into());
        assert_eq!((file.location(0).line, file.location(0).column), (1, 1));
        assert_eq!((file.location(4).line, file.location(4).column), (2, 2));
        assert_eq!((file.location(8).line, file.location(8).column), (3, 1));
    }
}
