//! A YAML tree that remembers where every node came from.
//!
//! serde stops at the first error, and a marketer fixing a campaign wants every mistake at
//! once; so the file is first read into this tree (from saphyr-parser's events, the parser under
//! serde-saphyr) and then validated by hand, node by node, collecting diagnostics. Scalars stay
//! text with their quoting style: the validator decides what `yes` or `2026-11-27T10:00` mean
//! for each field, instead of YAML 1.1's guesses.

use std::collections::HashMap;

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

/// Parses one YAML document. Syntax errors end parsing (one diagnostic); duplicate keys are
/// reported and the first occurrence kept, so validation can still go on.
pub fn parse(file: &str, text: &str) -> Result<(Node, Vec<Diagnostic>), Diagnostic> {
    let mut builder = Builder {
        file,
        events: Parser::new_from_str(text),
        anchors: HashMap::new(),
        problems: Vec::new(),
    };
    let root = builder.document()?;
    Ok((root, builder.problems))
}

struct Builder<'a> {
    file: &'a str,
    events: Parser<'a, saphyr_parser::StrInput<'a>>,
    anchors: HashMap<usize, Node>,
    problems: Vec<Diagnostic>,
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
        let root = self.node(event, span)?;
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

    fn node(&mut self, event: Event<'a>, span: Span) -> Result<Node, Diagnostic> {
        let (line, column) = (span.start.line(), span.start.col() + 1);
        let (node, anchor) = match event {
            Event::Scalar(value, style, anchor, _tag) => {
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
            Event::Alias(id) => match self.anchors.get(&id) {
                Some(target) => (
                    Node {
                        line,
                        column,
                        ..target.clone()
                    },
                    0,
                ),
                None => return Err(self.diag(span, "alias refers to an unknown anchor")),
            },
            Event::SequenceStart(anchor, _tag) => {
                let mut items = Vec::new();
                loop {
                    match self.next()? {
                        (Event::SequenceEnd, _) => break,
                        (event, span) => items.push(self.node(event, span)?),
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
            Event::MappingStart(anchor, _tag) => (self.mapping(line, column)?, anchor),
            _ => return Err(self.diag(span, "unexpected YAML event")),
        };
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        Ok(node)
    }

    fn mapping(&mut self, line: usize, column: usize) -> Result<Node, Diagnostic> {
        let mut entries: Vec<(Node, Node)> = Vec::new();
        let mut merged: Vec<(Node, Node)> = Vec::new();
        loop {
            let key = match self.next()? {
                (Event::MappingEnd, _) => break,
                (event, span) => self.node(event, span)?,
            };
            let (event, span) = self.next()?;
            let value = self.node(event, span)?;
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
            let duplicate = entries
                .iter()
                .find(|(k, _)| k.as_str().is_some() && k.as_str() == key.as_str());
            if let Some((first, _)) = duplicate {
                self.problems.push(Diagnostic {
                    file: self.file.to_owned(),
                    line: key.line,
                    column: key.column,
                    message: format!(
                        "duplicate key `{}` (first at line {}); the first one is used",
                        key.as_str().unwrap_or_default(),
                        first.line
                    ),
                });
                continue;
            }
            entries.push((key, value));
        }
        for (key, value) in merged {
            if !entries.iter().any(|(k, _)| k.as_str() == key.as_str()) {
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
}
