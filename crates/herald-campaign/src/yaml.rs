//! A YAML tree that remembers where every node came from.
//!
//! serde stops at the first error, and a marketer fixing a campaign wants every mistake at
//! once; so the file is first read into this tree (from saphyr-parser's events, the parser under
//! serde-saphyr) and then validated by hand, node by node, collecting diagnostics. Scalars stay
//! text with their quoting style: the validator decides what `yes` or `2026-11-27T10:00` mean
//! for each field, instead of YAML 1.1's guesses.
//!
//! # Limits
//! An alias is expanded by copying the anchored tree, so a few hundred bytes of nested aliases
//! (the "billion laughs") would build billions of nodes, and each level of nesting is a level of
//! recursion here. So the tree is capped while it is built: at most [`MAX_DEPTH`] levels, and at
//! most [`MAX_NODES`] nodes and [`MAX_TEXT_BYTES`] of scalar text in all, counting every copy an
//! alias or an anchor makes. The first node past a limit ends parsing with its position.

use std::collections::{HashMap, HashSet};

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::diagnostic::Diagnostic;

/// A node with its 1-based position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// What the node holds.
    pub kind: NodeKind,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// The node's content.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// A scalar as written; `plain` is false when it was quoted or a block scalar.
    Scalar {
        /// The text.
        value: String,
        /// Unquoted.
        plain: bool,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The text of a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// Whether it is an explicit or implicit null (`~`, `null`, or nothing).
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { value, plain: true } if matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// A short name of the node's kind, for messages.
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            _ if self.is_null() => "nothing",
            NodeKind::Scalar { .. } => "a value",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }
}

/// The deepest nesting of lists and mappings: a campaign needs five.
pub const MAX_DEPTH: usize = 128;
/// The most nodes one document may build, alias expansions included: a campaign needs a few
/// hundred.
pub const MAX_NODES: u64 = 1_000_000;
/// The most scalar text one document may build, alias expansions included: sixteen times the
/// largest campaign file.
pub const MAX_TEXT_BYTES: u64 = 16 * 1024 * 1024;

/// Parses one YAML document. Syntax errors and exceeded [limits](self#limits) end parsing (one
/// diagnostic); duplicate keys are reported and the first occurrence kept, so validation can
/// still go on.
pub fn parse(file: &str, text: &str) -> Result<(Node, Vec<Diagnostic>), Diagnostic> {
    let mut builder = Builder {
        file,
        events: Parser::new_from_str(text),
        anchors: HashMap::new(),
        problems: Vec::new(),
        nodes: 0,
        text: 0,
        deepest: 0,
    };
    let root = builder.document()?;
    Ok((root, builder.problems))
}

struct Builder<'a> {
    file: &'a str,
    events: Parser<'a, saphyr_parser::StrInput<'a>>,
    anchors: HashMap<usize, Anchored>,
    problems: Vec<Diagnostic>,
    /// Nodes built so far, copies included.
    nodes: u64,
    /// Scalar bytes built so far, copies included.
    text: u64,
    /// The deepest level reached in the subtree being built.
    deepest: usize,
}

/// An anchored subtree and what a copy of it costs.
struct Anchored {
    node: Node,
    nodes: u64,
    text: u64,
    /// Levels from its root to its deepest node (1 for a scalar).
    height: usize,
}

impl<'a> Builder<'a> {
    fn next(&mut self) -> Result<(Event<'a>, Span), Diagnostic> {
        match self.events.next_event() {
            Some(Ok(event)) => Ok(event),
            Some(Err(e)) => Err(Diagnostic {
                file: self.file.to_owned(),
                line: e.marker().line(),
                column: e.marker().col() + 1,
                message: format!("invalid YAML: {}", e.info()),
            }),
            None => Err(self.at_end("unexpected end of the YAML stream")),
        }
    }

    fn at_end(&self, message: &str) -> Diagnostic {
        Diagnostic {
            file: self.file.to_owned(),
            line: 1,
            column: 1,
            message: message.to_owned(),
        }
    }

    fn document(&mut self) -> Result<Node, Diagnostic> {
        loop {
            match self.next()? {
                (Event::StreamStart, _) => continue,
                (Event::DocumentStart(_), _) => break,
                (Event::StreamEnd, _) => {
                    return Err(self.at_end("the file is empty: expected a campaign mapping"));
                }
                (_, span) => return Err(self.diag(span, "expected a YAML document")),
            }
        }
        let (event, span) = self.next()?;
        let root = self.node(event, span, 1)?;
        match self.next()? {
            (Event::DocumentEnd, _) => {}
            (_, span) => return Err(self.diag(span, "unexpected content after the document")),
        }
        if let (Event::DocumentStart(_), span) = self.next()? {
            self.problems.push(self.diag(
                span,
                "a campaign file holds one document; split the others into their own files",
            ));
        }
        Ok(root)
    }

    fn diag(&self, span: Span, message: &str) -> Diagnostic {
        Diagnostic {
            file: self.file.to_owned(),
            line: span.start.line(),
            column: span.start.col() + 1,
            message: message.to_owned(),
        }
    }

    /// Counts `nodes` and `text` more built at `span`, failing past the limits.
    fn count(&mut self, span: Span, nodes: u64, text: u64) -> Result<(), Diagnostic> {
        self.nodes += nodes;
        self.text += text;
        if self.nodes > MAX_NODES {
            return Err(self.diag(
                span,
                &format!(
                    "the YAML builds more than {MAX_NODES} nodes (each use of an alias copies \
                     its anchor)"
                ),
            ));
        }
        if self.text > MAX_TEXT_BYTES {
            return Err(self.diag(
                span,
                &format!(
                    "the YAML builds more than {} MiB of text (each use of an alias copies its \
                     anchor)",
                    MAX_TEXT_BYTES / (1024 * 1024)
                ),
            ));
        }
        Ok(())
    }

    /// Builds the node starting with `event`, `depth` levels down (the root is at 1).
    fn node(&mut self, event: Event<'a>, span: Span, depth: usize) -> Result<Node, Diagnostic> {
        let too_deep = || format!("the YAML is nested more than {MAX_DEPTH} levels deep");
        if depth > MAX_DEPTH {
            return Err(self.diag(span, &too_deep()));
        }
        let (line, column) = (span.start.line(), span.start.col() + 1);
        let (nodes_before, text_before, deepest_before) = (self.nodes, self.text, self.deepest);
        self.deepest = depth;
        let (node, anchor) = match event {
            Event::Scalar(value, style, anchor, _tag) => {
                self.count(span, 1, value.len() as u64)?;
                let plain = style == ScalarStyle::Plain;
                (
                    Node {
                        kind: NodeKind::Scalar {
                            value: value.into_owned(),
                            plain,
                        },
                        line,
                        column,
                    },
                    anchor,
                )
            }
            Event::Alias(id) => {
                let Some(target) = self.anchors.get(&id) else {
                    return Err(self.diag(span, "alias refers to an unknown anchor"));
                };
                let (nodes, text, height) = (target.nodes, target.text, target.height);
                if depth + height - 1 > MAX_DEPTH {
                    return Err(self.diag(span, &too_deep()));
                }
                self.count(span, nodes, text)?;
                self.deepest = depth + height - 1;
                let target = &self.anchors[&id].node;
                (
                    Node {
                        line,
                        column,
                        ..target.clone()
                    },
                    0,
                )
            }
            Event::SequenceStart(anchor, _tag) => {
                self.count(span, 1, 0)?;
                let mut items = Vec::new();
                loop {
                    match self.next()? {
                        (Event::SequenceEnd, _) => break,
                        (event, span) => items.push(self.node(event, span, depth + 1)?),
                    }
                }
                (
                    Node {
                        kind: NodeKind::Seq(items),
                        line,
                        column,
                    },
                    anchor,
                )
            }
            Event::MappingStart(anchor, _tag) => {
                self.count(span, 1, 0)?;
                (self.mapping(line, column, depth)?, anchor)
            }
            _ => return Err(self.diag(span, "unexpected YAML event")),
        };
        if anchor != 0 {
            // The anchor keeps a copy of the subtree: that copy counts too.
            let (nodes, text) = (self.nodes - nodes_before, self.text - text_before);
            self.count(span, nodes, text)?;
            let height = self.deepest - depth + 1;
            let anchored = Anchored {
                node: node.clone(),
                nodes,
                text,
                height,
            };
            self.anchors.insert(anchor, anchored);
        }
        self.deepest = self.deepest.max(deepest_before);
        Ok(node)
    }

    fn mapping(&mut self, line: usize, column: usize, depth: usize) -> Result<Node, Diagnostic> {
        let mut entries: Vec<(Node, Node)> = Vec::new();
        // The scalar keys so far with their line: a linear search per key would make a
        // mapping of many keys quadratic.
        let mut keys: HashMap<String, usize> = HashMap::new();
        let mut merged: Vec<(Node, Node)> = Vec::new();
        loop {
            let key = match self.next()? {
                (Event::MappingEnd, _) => break,
                (event, span) => self.node(event, span, depth + 1)?,
            };
            let (event, span) = self.next()?;
            let value = self.node(event, span, depth + 1)?;
            if matches!(&key.kind, NodeKind::Scalar { value, plain: true } if value == "<<") {
                // YAML merge keys: `<<: *defaults` or `<<: [*a, *b]`; explicit keys win.
                let sources = match value.kind {
                    NodeKind::Seq(items) => items,
                    _ => vec![value],
                };
                for source in sources {
                    match source.kind {
                        NodeKind::Map(pairs) => merged.extend(pairs),
                        _ => self.problems.push(Diagnostic {
                            file: self.file.to_owned(),
                            line: source.line,
                            column: source.column,
                            message: "`<<` merges mappings only".into(),
                        }),
                    }
                }
                continue;
            }
            if let Some(name) = key.as_str() {
                if let Some(first) = keys.get(name) {
                    self.problems.push(Diagnostic {
                        file: self.file.to_owned(),
                        line: key.line,
                        column: key.column,
                        message: format!(
                            "duplicate key `{name}` (first at line {first}); the first one is used"
                        ),
                    });
                    continue;
                }
                keys.insert(name.to_owned(), key.line);
            }
            entries.push((key, value));
        }
        let mut merged_keys = HashSet::new();
        for (key, value) in merged {
            let new = match key.as_str() {
                Some(name) => !keys.contains_key(name) && merged_keys.insert(name.to_owned()),
                None => true,
            };
            if new {
                entries.push((key, value));
            }
        }
        Ok(Node {
            kind: NodeKind::Map(entries),
            line,
            column,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_keys(node: &Node) -> Vec<(String, usize, usize)> {
        let NodeKind::Map(entries) = &node.kind else {
            panic!("not a map")
        };
        entries
            .iter()
            .map(|(k, _)| (k.as_str().unwrap().to_owned(), k.line, k.column))
            .collect()
    }

    #[test]
    fn keeps_positions_and_quoting() {
        let (root, problems) = parse(
            "c.yaml",
            "id: x\nschedule:\n  at: 2026-11-27T10:00\n  in: \"recipient\"\n",
        )
        .unwrap();
        assert!(problems.is_empty());
        assert_eq!(
            map_keys(&root),
            [("id".into(), 1, 1), ("schedule".into(), 2, 1)]
        );
        let NodeKind::Map(entries) = &root.kind else {
            panic!()
        };
        let schedule = &entries[1].1;
        assert_eq!(
            map_keys(schedule),
            [("at".into(), 3, 3), ("in".into(), 4, 3)]
        );
        let NodeKind::Map(inner) = &schedule.kind else {
            panic!()
        };
        assert_eq!(
            inner[0].1.kind,
            NodeKind::Scalar {
                value: "2026-11-27T10:00".into(),
                plain: true
            }
        );
        assert_eq!((inner[1].1.line, inner[1].1.column), (4, 7));
        assert!(matches!(
            &inner[1].1.kind,
            NodeKind::Scalar { plain: false, .. }
        ));
    }

    #[test]
    fn reports_duplicates_and_merges() {
        let text = "base: &b { a: 1, b: 2 }\nother:\n  <<: *b\n  b: 3\nbase: again\n";
        let (root, problems) = parse("c.yaml", text).unwrap();
        assert_eq!(problems.len(), 1);
        assert_eq!((problems[0].line, problems[0].column), (5, 1));
        assert!(problems[0].message.contains("duplicate key `base`"));
        let NodeKind::Map(entries) = &root.kind else {
            panic!()
        };
        let NodeKind::Map(other) = &entries[1].1.kind else {
            panic!()
        };
        let values: Vec<_> = other
            .iter()
            .map(|(k, v)| (k.as_str().unwrap(), v.as_str().unwrap()))
            .collect();
        assert_eq!(values, [("b", "3"), ("a", "1")]);
    }

    #[test]
    fn syntax_errors_carry_a_position() {
        let err = parse("c.yaml", "id: x\nname: [unclosed\n").unwrap_err();
        assert_eq!(err.file, "c.yaml");
        assert!(err.line >= 2, "{err}");
        assert!(err.message.starts_with("invalid YAML"));
        assert!(parse("c.yaml", "").is_err());
    }

    /// The "billion laughs": nine levels of nine aliases would build 9^9 nodes. Issue 10 item 8:
    /// 0.5 KB of this reached 14 GB in 20 s. Now the node that passes the limit is reported.
    #[test]
    fn alias_bombs_stop_at_the_node_limit() {
        let mut text = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for (previous, name) in ('a'..='h').zip('b'..='i') {
            let items = vec![format!("*{previous}"); 9].join(", ");
            text.push_str(&format!("{name}: &{name} [{items}]\n"));
        }
        assert!(text.len() < 600, "{}", text.len());
        let error = parse("bomb.yaml", &text).unwrap_err();
        assert!(error.message.contains("more than 1000000 nodes"), "{error}");
        assert!(error.line >= 6, "{error}");
    }

    /// Aliases of a long scalar build text, not nodes: that is capped too.
    #[test]
    fn alias_copies_of_long_text_stop_at_the_text_limit() {
        let mut text = format!("a: &a \"{}\"\nb: [", "x".repeat(100_000));
        text.push_str(&vec!["*a"; 200].join(", "));
        text.push_str("]\n");
        let error = parse("text.yaml", &text).unwrap_err();
        assert!(error.message.contains("MiB of text"), "{error}");
        assert_eq!(error.line, 2);
    }

    /// Deep nesting used to overflow the stack (an abort, not an error).
    #[test]
    fn deep_nesting_is_an_error_with_a_position() {
        let flow = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let block = "- ".repeat(100_000) + "x\n";
        let mapping: String = (0..200)
            .map(|level| format!("{}k:\n", "  ".repeat(level)))
            .collect();
        // The scanner refuses flow nesting past 255 itself, ahead of the events.
        let error = parse("deep.yaml", &flow).unwrap_err();
        assert_eq!((error.line, error.column), (1, 256), "{error}");
        for text in [block, mapping] {
            let error = parse("deep.yaml", &text).unwrap_err();
            assert!(
                error.message.contains("nested more than 128 levels"),
                "{error}"
            );
        }
        let ok = format!(
            "{}1{}",
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        );
        assert!(parse("ok.yaml", &ok).is_ok());
        // An alias to a deep list, used deeper down, is measured by where it lands.
        let inner = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        let text = format!("a: &a {inner}\nb: {}*a{}\n", "[".repeat(40), "]".repeat(40));
        let error = parse("alias.yaml", &text).unwrap_err();
        assert!(error.message.contains("nested more than 128"), "{error}");
        assert_eq!(error.line, 2);
    }

    /// Many keys in one mapping: duplicate checks must not be quadratic, and still work.
    #[test]
    fn wide_mappings_keep_duplicate_checks() {
        let mut text: String = (0..50_000).map(|n| format!("k{n}: {n}\n")).collect();
        text.push_str("k7: again\n");
        let (root, problems) = parse("wide.yaml", &text).unwrap();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.contains("`k7` (first at line 8)"));
        assert!(matches!(root.kind, NodeKind::Map(ref e) if e.len() == 50_000));
    }
}
