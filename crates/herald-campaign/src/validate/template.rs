//! `template`: name, language per locale, header, body parameters and buttons, checked against
//! what the provider would refuse for every recipient (a fixed header text over 60 characters,
//! more than 10 buttons, an empty language code).

use herald_core::template::{
    LanguageMap, ParamPlace, ParamTemplate, RenderError, check_whatsapp_param,
};

use super::Cx;
use crate::campaign::{Button, Header, MediaKind, OnReply, Template};
use crate::fields;
use crate::yaml::{Node, NodeKind};

impl Cx<'_> {
    pub(super) fn template(&mut self, node: &Node) -> Option<Template> {
        let obj = self.object(node, "template", fields::TEMPLATE, false)?;
        let name = obj.get("name").and_then(|n| {
            let name = self.string(n, "template.name")?;
            let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !valid {
                self.error(n, format!("invalid template name `{name}`: lowercase letters, digits and underscores only"));
            }
            valid.then_some(name)
        });
        let language = obj.get("language").and_then(|n| self.language(n));
        let header = match obj.get("header") {
            Some(n) => self.header(n).map(Some),
            None => Some(None),
        };
        let mut params = Vec::new();
        let params_node = obj.get("params");
        if let Some(p) = params_node.and_then(|n| self.object(n, "template.params", &[], true)) {
            for (key, value) in p.entries {
                let (Some(param), Some(text)) = (key.as_str(), self.string(value, "a parameter"))
                else {
                    continue;
                };
                match ParamTemplate::parse(&text) {
                    Ok(t) => {
                        let what = format!("parameter `{param}`");
                        self.fixed_text(value, &what, &t, ParamPlace::Body);
                        params.push((param.to_owned(), t));
                    }
                    Err(e) => self.error(value, format!("parameter `{param}`: {e}")),
                }
            }
        }
        let mut buttons = Vec::new();
        let buttons_node = obj.get("buttons");
        if let Some(items) = buttons_node.and_then(|n| self.list(n, "template.buttons")) {
            if items.len() > fields::MAX_BUTTONS
                && let Some(node) = buttons_node
            {
                self.error(
                    node,
                    format!(
                        "template.buttons has {} buttons; WhatsApp allows at most {}",
                        items.len(),
                        fields::MAX_BUTTONS
                    ),
                );
            }
            for item in items {
                if let Some(button) = self.button(item) {
                    buttons.push(button);
                }
            }
        }
        Some(Template {
            name: name?,
            language: language?,
            header: header?,
            params,
            buttons,
        })
    }

    pub(super) fn language(&mut self, node: &Node) -> Option<LanguageMap> {
        if let NodeKind::Scalar { .. } = node.kind {
            let code = self.language_code(node)?;
            return Some(LanguageMap::new([], code));
        }
        let obj = self.object(node, "template.language", &[], true)?;
        let mut default = None;
        let mut by_locale = Vec::new();
        for (key, value) in obj.entries {
            let (Some(locale), Some(language)) = (key.as_str(), self.language_code(value)) else {
                continue;
            };
            if locale.trim().is_empty() {
                self.error(key, "a locale in template.language must not be empty");
                continue;
            }
            if locale == "default" {
                default = Some(language);
            } else {
                by_locale.push((locale.to_owned(), language));
            }
        }
        if default.is_none() {
            self.error(
                node,
                "template.language needs a `default` for locales not listed",
            );
        }
        Some(LanguageMap::new(by_locale, default?))
    }

    /// A template language code: text with no blanks (`en`, `pt_BR`). An empty code would be
    /// refused by the provider for every recipient it is chosen for.
    pub(super) fn language_code(&mut self, node: &Node) -> Option<String> {
        let code = self.string(node, "a language code")?;
        if code.trim().is_empty() || code.contains(char::is_whitespace) {
            self.error(
                node,
                format!("invalid language code `{code}`: expected a code such as en or pt_BR"),
            );
            return None;
        }
        Some(code)
    }

    /// Checks what every rendering of `template` shares against the provider's rules for
    /// `place`: a fixed text that breaks them would skip every recipient at send time.
    pub(super) fn fixed_text(
        &mut self,
        node: &Node,
        what: &str,
        template: &ParamTemplate,
        place: ParamPlace,
    ) {
        let max = place.max_chars();
        if template.variables().next().is_some() {
            let fixed = template.fixed_chars();
            if fixed > max {
                let message = format!(
                    "the fixed text of {what} is {fixed} characters; WhatsApp allows at most \
                     {max} in all"
                );
                self.error(node, message);
            }
            return;
        }
        let Ok(text) = template.render(|_| None) else {
            return;
        };
        if let Err(RenderError::InvalidParameter { problem, .. }) =
            check_whatsapp_param(what, place, &text)
        {
            let length = text.chars().count();
            let message = if length > max {
                format!("{what} is {length} characters; WhatsApp allows at most {max}")
            } else {
                format!("{what} {problem}")
            };
            self.error(node, message);
        }
    }

    pub(super) fn header(&mut self, node: &Node) -> Option<Header> {
        let obj = self.object(node, "template.header", fields::HEADER, false)?;
        let present: Vec<&(Node, Node)> =
            obj.entries.iter().filter(|(_, v)| !v.is_null()).collect();
        if present.len() != 1 {
            self.error(
                node,
                "template.header takes exactly one of image, video, document, text",
            );
            return None;
        }
        let (key, value) = present[0];
        let text = self.string(value, "the header")?;
        let kind = match key.as_str()? {
            "image" => MediaKind::Image,
            "video" => MediaKind::Video,
            "document" => MediaKind::Document,
            _ => {
                let template = ParamTemplate::parse(&text)
                    .map_err(|e| self.error(value, format!("header text: {e}")))
                    .ok()?;
                self.fixed_text(value, "the header text", &template, ParamPlace::HeaderText);
                return Some(Header::Text(template));
            }
        };
        if !text.starts_with("https://")
            || text.len() <= "https://".len()
            || text.contains(char::is_whitespace)
        {
            self.error(
                value,
                format!(
                    "header {} must be an https:// URL, found `{text}`",
                    key.as_str()?
                ),
            );
            return None;
        }
        Some(Header::Media { kind, link: text })
    }

    pub(super) fn button(&mut self, node: &Node) -> Option<Button> {
        let obj = self.object(node, "a button", fields::BUTTON, false)?;
        let payload = obj
            .get("payload")
            .and_then(|n| self.string(n, "button payload"));
        let on_reply = match obj.get("on_reply") {
            None => Some(None),
            Some(n) if n.as_str() == Some("opt_out") => Some(Some(OnReply::OptOut)),
            Some(
                n @ Node {
                    kind: NodeKind::Map(_),
                    ..
                },
            ) => {
                let reply = self.object(n, "on_reply", fields::ON_REPLY, false)?;
                reply
                    .get("tag")
                    .and_then(|t| self.string(t, "tag"))
                    .map(|t| Some(OnReply::Tag(t)))
            }
            Some(n) => {
                self.error(n, "on_reply must be `opt_out` or `{ tag: name }`");
                None
            }
        };
        Some(Button {
            payload: payload?,
            on_reply: on_reply?,
        })
    }
}
