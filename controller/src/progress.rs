//! What long work tells the person waiting for it: boards working through
//! their steps, services starting their tasks, objects being written.
//!
//! Work reports [`Event`]s; where they go is the caller's choice. On a
//! terminal, [`Bars`] draws a progress bar per board and per service,
//! redrawn in place, and leaves one finished line per bar in the scrollback.
//! Anywhere else (a pipe, a CI log) [`Lines`] writes one plain line per
//! change, and the controller logs them (one log event each, with fields).

use crate::plan::{ObjectKind, Operation};
use std::io::Write;
use std::sync::{Arc, Mutex};

/// One thing worth telling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A line that stands on its own: a board answered, a failure, a node
    /// draining.
    Note(&'a str),
    /// An object is being written: `kind` (`service`, `network`, `node`,
    /// ...), its `name`, and the `operation` (`create`, `update`, `remove`).
    Write {
        kind: ObjectKind,
        name: &'a str,
        operation: Operation,
    },
    /// A board starts a step: `done` of `total` steps are finished.
    BoardStep {
        node: &'a str,
        done: usize,
        total: usize,
        step: &'a str,
    },
    /// A board finished its steps (`ok`) or stopped at a failed one.
    BoardDone { node: &'a str, ok: bool },
    /// A service's tasks: `running` of `desired` run what was asked.
    Tasks {
        service: &'a str,
        running: u64,
        desired: u64,
    },
}

impl Event<'_> {
    /// The event as one plain line (`None`: nothing worth a line).
    pub fn line(&self) -> Option<String> {
        match *self {
            Event::Note(text) => Some(text.to_string()),
            Event::Write {
                kind,
                name,
                operation,
            } => Some(format!(
                "{}.{name}: {}",
                kind.as_str(),
                operation.progressive()
            )),
            Event::BoardStep { node, step, .. } => Some(format!("node {node}: {step}")),
            Event::BoardDone { .. } => None,
            Event::Tasks {
                service,
                running,
                desired,
            } => Some(format!(
                "service.{service}: {running}/{desired} tasks running"
            )),
        }
    }
}

/// `creating`, `updating`, `removing`.
/// Where events go.
pub trait Progress {
    fn report(&mut self, event: Event<'_>);
}

/// Progress shared by work running in parallel (boards are reached at once).
pub type SharedProgress = Arc<Mutex<dyn Progress + Send>>;

impl Progress for SharedProgress {
    fn report(&mut self, event: Event<'_>) {
        if let Ok(mut progress) = self.lock() {
            progress.report(event);
        }
    }
}

/// One plain line per event, for pipes and logs; a service's count is
/// written only when it changes.
#[derive(Debug)]
pub struct Lines<W> {
    out: W,
    /// Each service's count last written.
    last_tasks: std::collections::HashMap<String, (u64, u64)>,
}

impl<W: Write> Lines<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            last_tasks: std::collections::HashMap::new(),
        }
    }
}

impl<W: Write> Progress for Lines<W> {
    fn report(&mut self, event: Event<'_>) {
        if let Event::Tasks {
            service,
            running,
            desired,
        } = event
        {
            let count = (running, desired);
            if self.last_tasks.insert(service.to_string(), count) == Some(count) {
                return;
            }
        }
        let Some(line) = event.line() else { return };
        let _ = writeln!(self.out, "{line}");
        let _ = self.out.flush();
    }
}

/// A bar being drawn.
#[derive(Debug)]
struct Bar {
    /// `node pi1`, `service.web`.
    name: String,
    done: u64,
    total: u64,
    text: String,
}

/// Progress bars on a terminal, redrawn in place below the notes.
#[derive(Debug)]
pub struct Bars<W> {
    out: W,
    live: Vec<Bar>,
    /// Lines of bars drawn last time, to move back over.
    drawn: usize,
    /// The terminal's width: longer lines would wrap and break the redraw.
    width: usize,
}

/// Cells of the bar itself.
const BAR_CELLS: u64 = 20;

impl<W: Write> Bars<W> {
    /// Bars `width` columns wide at most.
    pub fn new(out: W, width: usize) -> Self {
        Self {
            out,
            live: Vec::new(),
            drawn: 0,
            width: width.max(20),
        }
    }

    fn fit(&self, line: &str) -> String {
        line.chars().take(self.width - 1).collect()
    }

    /// Moves back over the bars drawn last time and clears them.
    fn clear(&mut self) {
        if self.drawn > 0 {
            let _ = write!(self.out, "\x1b[{}A\r\x1b[J", self.drawn);
        }
        self.drawn = 0;
    }

    fn draw(&mut self) {
        let lines: Vec<String> = self
            .live
            .iter()
            .map(|bar| {
                let filled = (bar.done.min(bar.total) * BAR_CELLS)
                    .checked_div(bar.total)
                    .unwrap_or(0);
                let cells: String = (0..BAR_CELLS)
                    .map(|i| if i < filled { '#' } else { '-' })
                    .collect();
                self.fit(&format!(
                    "{:<24} [{cells}] {}/{} {}",
                    bar.name, bar.done, bar.total, bar.text
                ))
            })
            .collect();
        for line in &lines {
            let _ = writeln!(self.out, "{line}");
        }
        self.drawn = lines.len();
        let _ = self.out.flush();
    }

    /// Writes a line above the bars (it stays in the scrollback).
    fn note(&mut self, text: &str) {
        let line = self.fit(text);
        let _ = writeln!(self.out, "{line}");
    }

    fn set(&mut self, name: String, done: u64, total: u64, text: String) {
        match self.live.iter_mut().find(|b| b.name == name) {
            Some(bar) => {
                bar.done = done;
                bar.total = total;
                bar.text = text;
            }
            None => self.live.push(Bar {
                name,
                done,
                total,
                text,
            }),
        }
    }

    fn finish(&mut self, name: &str, line: &str) {
        self.live.retain(|b| b.name != name);
        self.note(line);
    }
}

impl<W: Write> Progress for Bars<W> {
    fn report(&mut self, event: Event<'_>) {
        self.clear();
        match event {
            Event::Note(_) | Event::Write { .. } => {
                if let Some(line) = event.line() {
                    self.note(&line);
                }
            }
            Event::BoardStep {
                node,
                done,
                total,
                step,
            } => self.set(
                format!("node {node}"),
                done as u64,
                total as u64,
                step.to_string(),
            ),
            Event::BoardDone { node, ok } => {
                let name = format!("node {node}");
                let line = if ok {
                    format!("{name}: steps done")
                } else {
                    format!("{name}: stopped at a failed step (above)")
                };
                self.finish(&name, &line);
            }
            Event::Tasks {
                service,
                running,
                desired,
            } => {
                let name = format!("service.{service}");
                if running == desired {
                    self.finish(&name, &format!("{name}: {running}/{desired} tasks running"));
                } else {
                    self.set(name, running, desired, "tasks running".to_string());
                }
            }
        }
        self.draw();
    }
}

/// How a command shows progress on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Plain lines (not a terminal, `TERM=dumb`, or `RECONCILER_PROGRESS=plain`).
    Plain,
    /// Progress bars redrawn in place.
    Bars,
}

impl Style {
    /// Bars when stderr is a terminal that can move its cursor, unless
    /// `RECONCILER_PROGRESS=plain` asks for lines.
    pub fn detect() -> Self {
        use std::io::IsTerminal as _;
        let plain = std::env::var("RECONCILER_PROGRESS").is_ok_and(|v| v == "plain")
            || std::env::var("TERM").is_ok_and(|t| t == "dumb");
        if !plain && std::io::stderr().is_terminal() {
            Style::Bars
        } else {
            Style::Plain
        }
    }
}

/// The terminal's width: `COLUMNS` when exported, else the width of the
/// terminal the bars are drawn on (stderr) or of the controlling terminal
/// (bash does not export `COLUMNS`), else 80.
pub fn terminal_width() -> usize {
    let from_env = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok());
    from_env
        .or_else(|| {
            terminal_size::terminal_size_of(std::io::stderr())
                .or_else(|| {
                    let tty = std::fs::File::open("/dev/tty").ok()?;
                    terminal_size::terminal_size_of(&tty)
                })
                .map(|(terminal_size::Width(width), _)| usize::from(width))
        })
        .filter(|width| *width > 0)
        .unwrap_or(80)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a terminal shows after `output`: cursor-up and clear-below
    /// applied, like a real terminal would.
    fn screen(output: &str) -> Vec<String> {
        let mut lines: Vec<String> = Vec::new();
        let mut rest = output;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("\x1b[") {
                let end = after.find('A').expect("cursor up");
                let up: usize = after[..end].parse().expect("count");
                lines.truncate(lines.len() - up);
                rest = after[end + 1..]
                    .strip_prefix("\r\x1b[J")
                    .expect("clear below");
                continue;
            }
            let end = rest.find('\n').expect("whole lines");
            lines.push(rest[..end].to_string());
            rest = &rest[end + 1..];
        }
        lines
    }

    #[test]
    fn bars_are_redrawn_in_place_and_finished_ones_stay_as_lines() {
        let mut bars = Bars::new(Vec::new(), 100);
        bars.report(Event::Note("node pi1: reachable (aarch64, Raspbian)"));
        for (done, step) in ["install Docker", "set the hostname"].iter().enumerate() {
            bars.report(Event::BoardStep {
                node: "pi1",
                done,
                total: 2,
                step,
            });
        }
        bars.report(Event::Tasks {
            service: "web",
            running: 1,
            desired: 3,
        });
        let mid = screen(&String::from_utf8_lossy(&bars.out));
        assert_eq!(
            mid,
            [
                "node pi1: reachable (aarch64, Raspbian)",
                "node pi1                 [##########----------] 1/2 set the hostname",
                "service.web              [######--------------] 1/3 tasks running",
            ]
        );
        bars.report(Event::BoardDone {
            node: "pi1",
            ok: true,
        });
        bars.report(Event::Tasks {
            service: "web",
            running: 3,
            desired: 3,
        });
        let end = screen(&String::from_utf8_lossy(&bars.out));
        assert_eq!(
            end,
            [
                "node pi1: reachable (aarch64, Raspbian)",
                "node pi1: steps done",
                "service.web: 3/3 tasks running",
            ]
        );
    }

    #[test]
    fn lines_say_each_change_once() {
        let mut lines = Lines::new(Vec::new());
        for running in [0, 0, 1, 1, 2] {
            lines.report(Event::Tasks {
                service: "web",
                running,
                desired: 2,
            });
        }
        lines.report(Event::BoardDone {
            node: "pi1",
            ok: true,
        });
        assert_eq!(
            String::from_utf8_lossy(&lines.out),
            "service.web: 0/2 tasks running\nservice.web: 1/2 tasks running\nservice.web: 2/2 tasks running\n"
        );
    }

    #[test]
    fn a_long_line_is_cut_to_the_terminal_width() {
        let mut bars = Bars::new(Vec::new(), 30);
        bars.report(Event::Note(&"x".repeat(100)));
        assert_eq!(
            String::from_utf8_lossy(&bars.out),
            format!("{}\n", "x".repeat(29))
        );
    }
}
