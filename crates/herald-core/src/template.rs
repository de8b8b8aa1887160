//! Template parameters: `{{ attr | default('…') }}` expressions, per-locale language choice, and
//! WhatsApp's rules for parameter values, checked before a request is made (a rejected request
//! still counts against the sender's rate and, for some codes, its quality rating).

use std::collections::BTreeMap;

use crate::outcome::SkipReason;

/// Why a parameter expression was rejected at validation time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{{` without `}}`.
    #[error("unclosed `{{{{` in {input:?}")]
    Unclosed {
        /// The expression.
        input: String,
    },
    /// Something between the braces that is not `name` or `name | default('…')`.
    #[error(
        "invalid placeholder {placeholder:?}: expected {{{{ name }}}} or {{{{ name | default('text') }}}}"
    )]
    Placeholder {
        /// The placeholder text.
        placeholder: String,
    },
}

/// Why a rendered parameter cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// A variable with no value and no default.
    #[error("missing variable {name:?}")]
    MissingVariable {
        /// The attribute name.
        name: String,
    },
    /// A value that breaks the provider's parameter rules.
    #[error("parameter {param:?} {problem}")]
    InvalidParameter {
        /// The parameter name.
        param: String,
        /// What is wrong, in words.
        problem: &'static str,
    },
}

impl RenderError {
    /// The skip reason the delivery ends with.
    pub fn skip_reason(&self) -> SkipReason {
        match self {
            RenderError::MissingVariable { .. } => SkipReason::MissingVariable,
            RenderError::InvalidParameter { .. } => SkipReason::InvalidParameter,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Variable {
        name: String,
        default: Option<String>,
    },
}

/// A parsed parameter expression: literal text with placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamTemplate {
    parts: Vec<Part>,
}

impl ParamTemplate {
    /// Parses `Hello {{ first_name | default('friend') }}!`.
    pub fn parse(input: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = input;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or_else(|| TemplateError::Unclosed {
                input: input.to_owned(),
            })?;
            parts.push(parse_placeholder(&after[..close])?);
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Ok(Self { parts })
    }

    /// The attribute names the expression reads.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Variable { name, .. } => Some(name.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// The characters of the fixed text around the placeholders: every rendering is at least
    /// this long, so a fixed text over a place's limit fails for every recipient.
    pub fn fixed_chars(&self) -> usize {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Literal(text) => text.chars().count(),
                Part::Variable { .. } => 0,
            })
            .sum()
    }

    /// Renders with the recipient's attributes. A blank attribute counts as missing, so that an
    /// empty CSV cell falls back to the default instead of producing "Hello , …".
    pub fn render(
        &self,
        attribute: impl Fn(&str) -> Option<String>,
    ) -> Result<String, RenderError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Variable { name, default } => {
                    match (attribute(name).filter(|v| !v.trim().is_empty()), default) {
                        (Some(value), _) => out.push_str(&value),
                        (None, Some(default)) => out.push_str(default),
                        (None, None) => {
                            return Err(RenderError::MissingVariable { name: name.clone() });
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

fn parse_placeholder(inner: &str) -> Result<Part, TemplateError> {
    let error = || TemplateError::Placeholder {
        placeholder: format!("{{{{{inner}}}}}"),
    };
    let (name, filter) = match inner.split_once('|') {
        Some((name, filter)) => (name.trim(), Some(filter.trim())),
        None => (inner.trim(), None),
    };
    let valid_name = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    if !valid_name {
        return Err(error());
    }
    let default = match filter {
        None => None,
        Some(filter) => {
            let argument = filter
                .strip_prefix("default")
                .map(str::trim_start)
                .and_then(|f| f.strip_prefix('('))
                .and_then(|f| f.strip_suffix(')'))
                .map(str::trim)
                .ok_or_else(error)?;
            let quote = argument
                .chars()
                .next()
                .filter(|c| *c == '\'' || *c == '"')
                .ok_or_else(error)?;
            let text = argument[1..]
                .strip_suffix(quote)
                .filter(|t| !t.contains(quote))
                .ok_or_else(error)?;
            Some(text.to_owned())
        }
    };
    Ok(Part::Variable {
        name: name.to_owned(),
        default,
    })
}

/// Where a parameter goes; each place has its own rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamPlace {
    /// A body parameter.
    Body,
    /// A text header parameter.
    HeaderText,
    /// A quick-reply button payload.
    ButtonPayload,
}

impl ParamPlace {
    /// The longest value accepted, in characters. Body: the 1,024-character limit of a template
    /// body; header text: 60; payload: 128 (Herald's conservative reading of Meta's docs).
    pub fn max_chars(self) -> usize {
        match self {
            ParamPlace::Body => 1024,
            ParamPlace::HeaderText => 60,
            ParamPlace::ButtonPayload => 128,
        }
    }
}

/// Checks a rendered value against WhatsApp's rules: not empty, no newline or tab, no more than
/// four consecutive spaces (body and header), within the length limit.
pub fn check_whatsapp_param(
    param: &str,
    place: ParamPlace,
    value: &str,
) -> Result<(), RenderError> {
    let invalid = |problem| {
        Err(RenderError::InvalidParameter {
            param: param.to_owned(),
            problem,
        })
    };
    if value.trim().is_empty() {
        return invalid("is empty");
    }
    if value.chars().count() > place.max_chars() {
        return invalid("is longer than the provider allows");
    }
    if place != ParamPlace::ButtonPayload {
        if value.contains(['\n', '\r']) {
            return invalid("contains a newline");
        }
        if value.contains('\t') {
            return invalid("contains a tab");
        }
        if value.contains("     ") {
            return invalid("contains more than four consecutive spaces");
        }
    }
    Ok(())
}

/// Template language per recipient locale: an exact match (`pt-BR`), then the primary subtag
/// (`pt`), then the default. Locales compare case-insensitively with `_` read as `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanguageMap {
    by_locale: BTreeMap<String, String>,
    default: String,
}

impl LanguageMap {
    /// Builds the map; `default` is the language for every other locale.
    pub fn new(by_locale: impl IntoIterator<Item = (String, String)>, default: String) -> Self {
        let by_locale = by_locale
            .into_iter()
            .map(|(locale, language)| (normalise_locale(&locale), language))
            .collect();
        Self { by_locale, default }
    }

    /// The template language for a recipient's locale.
    pub fn choose(&self, locale: Option<&str>) -> &str {
        let Some(locale) = locale.map(normalise_locale) else {
            return &self.default;
        };
        if let Some(language) = self.by_locale.get(&locale) {
            return language;
        }
        let primary = locale.split('-').next().unwrap_or_default();
        self.by_locale.get(primary).unwrap_or(&self.default)
    }
}

fn normalise_locale(locale: &str) -> String {
    locale.trim().replace('_', "-").to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn renders_literals_variables_and_defaults() {
        let t = ParamTemplate::parse("Hi {{ first_name | default('друг') }}, {{city}}!").unwrap();
        assert_eq!(t.variables().collect::<Vec<_>>(), ["first_name", "city"]);
        assert_eq!(
            t.render(attrs(&[("first_name", "Anna"), ("city", "Kazan")]))
                .unwrap(),
            "Hi Anna, Kazan!"
        );
        assert_eq!(
            t.render(attrs(&[("city", "Kazan")])).unwrap(),
            "Hi друг, Kazan!"
        );
        assert_eq!(
            t.render(attrs(&[("first_name", "  "), ("city", "Kazan")]))
                .unwrap(),
            "Hi друг, Kazan!"
        );
        let missing = t.render(attrs(&[("first_name", "Anna")])).unwrap_err();
        assert_eq!(
            missing,
            RenderError::MissingVariable {
                name: "city".into()
            }
        );
        assert_eq!(missing.skip_reason(), SkipReason::MissingVariable);
        assert_eq!(
            ParamTemplate::parse("30%")
                .unwrap()
                .render(attrs(&[]))
                .unwrap(),
            "30%"
        );
        let double = ParamTemplate::parse(r#"{{ x | default("it's") }}"#).unwrap();
        assert_eq!(double.render(attrs(&[])).unwrap(), "it's");
        assert_eq!(t.fixed_chars(), "Hi , !".len());
        assert_eq!(ParamTemplate::parse("Привет").unwrap().fixed_chars(), 6);
    }

    #[test]
    fn rejects_malformed_expressions() {
        for bad in [
            "{{ name",
            "{{ }}",
            "{{ 1st }}",
            "{{ a | upper }}",
            "{{ a | default(x) }}",
            "{{ a | default('x\") }}",
        ] {
            assert!(ParamTemplate::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn whatsapp_parameter_rules() {
        let ok = check_whatsapp_param("name", ParamPlace::Body, "Anna    Maria");
        assert_eq!(ok, Ok(()));
        for (value, problem) in [
            ("a\nb", "contains a newline"),
            ("a\tb", "contains a tab"),
            ("a     b", "contains more than four consecutive spaces"),
            ("", "is empty"),
        ] {
            let err = check_whatsapp_param("name", ParamPlace::Body, value).unwrap_err();
            assert_eq!(
                err,
                RenderError::InvalidParameter {
                    param: "name".into(),
                    problem
                },
                "{value:?}"
            );
            assert_eq!(err.skip_reason(), SkipReason::InvalidParameter);
        }
        assert!(check_whatsapp_param("h", ParamPlace::HeaderText, &"x".repeat(61)).is_err());
        assert!(check_whatsapp_param("h", ParamPlace::HeaderText, &"я".repeat(60)).is_ok());
        assert!(check_whatsapp_param("b", ParamPlace::Body, &"x".repeat(1025)).is_err());
    }

    #[test]
    fn language_falls_back_from_exact_to_primary_to_default() {
        let map = LanguageMap::new(
            [
                ("ru".into(), "ru".into()),
                ("pt_BR".into(), "pt_BR".into()),
                ("pt".into(), "pt_PT".into()),
            ],
            "en".into(),
        );
        assert_eq!(map.choose(Some("ru-RU")), "ru");
        assert_eq!(map.choose(Some("pt-br")), "pt_BR");
        assert_eq!(map.choose(Some("pt-AO")), "pt_PT");
        assert_eq!(map.choose(Some("de")), "en");
        assert_eq!(map.choose(None), "en");
    }
}
