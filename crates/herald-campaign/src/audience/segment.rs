//! The campaign's `where` filter: which rows of the audience the campaign is for.
//!
//! A recipient outside the segment is not an error; the engine records it as skipped
//! (`not_in_segment`) so that the counts still add up to the audience.

use std::collections::BTreeMap;

use herald_core::Region;

use super::Recipient;

/// A conjunction of conditions on a recipient. An empty segment matches everyone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Segment {
    /// Tags the recipient must all have, compared case-insensitively (`VIP` in the file and `vip`
    /// in the campaign are the same tag to the people who write them).
    pub tags: Vec<String>,
    /// The recipient's country: the `country` column when the row has one, else the phone's
    /// region, so that a file without a country column can still be split by country.
    pub country: Option<Region>,
    /// Attribute name to the values it may have: the recipient's value must equal one of them
    /// exactly (an empty list matches nobody). Exact, because attribute values are free text
    /// and any normalisation would be a guess.
    pub attributes: BTreeMap<String, Vec<String>>,
}

impl Segment {
    /// Whether `recipient` meets every condition, with the tags of its audience row only.
    pub fn matches(&self, recipient: &Recipient) -> bool {
        self.matches_except_tags(recipient) && self.missing_tags(recipient).is_empty()
    }

    /// Whether `recipient` meets every condition but the tags: expansion then looks for the
    /// [`Segment::missing_tags`] among the tags stored for the phone (button replies).
    pub fn matches_except_tags(&self, recipient: &Recipient) -> bool {
        let in_country = self.country.is_none_or(|wanted| {
            recipient.country.or_else(|| recipient.phone.region()) == Some(wanted)
        });
        let has_attributes = self.attributes.iter().all(|(name, allowed)| {
            recipient
                .attributes
                .get(name)
                .is_some_and(|value| allowed.contains(value))
        });
        in_country && has_attributes
    }

    /// The wanted tags the audience row lacks (empty when it has them all; no allocation then).
    pub fn missing_tags(&self, recipient: &Recipient) -> Vec<String> {
        self.tags
            .iter()
            .filter(|wanted| !recipient.tags.iter().any(|tag| same_text(tag, wanted)))
            .cloned()
            .collect()
    }

    /// Whether `stored` (tags stored for the phone) holds every tag of `wanted`, compared as
    /// the row's tags are.
    pub fn tags_cover<'a>(
        wanted: &[String],
        stored: impl IntoIterator<Item = &'a String> + Clone,
    ) -> bool {
        wanted
            .iter()
            .all(|wanted| stored.clone().into_iter().any(|tag| same_text(tag, wanted)))
    }
}

/// Case-insensitive equality without allocating (Unicode lower-casing, so `ВИП` equals `вип`).
fn same_text(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

#[cfg(test)]
mod tests {
    use herald_core::{AudienceId, PhoneNumber, RecipientId};

    use super::*;

    fn recipient(phone: &str, country: Option<&str>, tags: &[&str], city: &str) -> Recipient {
        let phone = PhoneNumber::parse(phone, None).unwrap();
        Recipient {
            line: 2,
            id: AudienceId::Phone(RecipientId::parse(phone.expose_e164()).unwrap()),
            phone,
            zone: None,
            locale: None,
            country: country.map(|c| Region::parse(c).unwrap()),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            attributes: BTreeMap::from([("city".to_owned(), city.to_owned())]),
        }
    }

    fn region(code: &str) -> Option<Region> {
        Some(Region::parse(code).unwrap())
    }

    #[test]
    fn empty_segment_matches_everyone() {
        let r = recipient("+14165550134", None, &[], "Toronto");
        assert!(Segment::default().matches(&r));
    }

    #[test]
    fn every_tag_is_required_in_any_case() {
        let r = recipient("+79161234567", None, &["VIP", "Новый"], "Moscow");
        let segment = |tags: &[&str]| Segment {
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            ..Segment::default()
        };
        assert!(segment(&["vip"]).matches(&r));
        assert!(segment(&["vip", "новый"]).matches(&r));
        assert!(!segment(&["vip", "churned"]).matches(&r));
    }

    #[test]
    fn country_falls_back_to_the_phone_region() {
        let toronto = recipient("+1 416 555 0134", None, &[], "Toronto");
        let canada = Segment {
            country: region("CA"),
            ..Segment::default()
        };
        let usa = Segment {
            country: region("US"),
            ..Segment::default()
        };
        assert!(canada.matches(&toronto));
        assert!(!usa.matches(&toronto));
        // The column wins over the phone: a Canadian number of someone who lives in the US.
        let moved = recipient("+1 416 555 0134", Some("US"), &[], "Buffalo");
        assert!(usa.matches(&moved));
        assert!(!canada.matches(&moved));
    }

    #[test]
    fn attributes_match_one_of_their_values_exactly() {
        let r = recipient("+79161234567", None, &[], "Kazan");
        let segment = |values: &[&str]| Segment {
            attributes: BTreeMap::from([(
                "city".to_owned(),
                values.iter().map(|v| (*v).to_owned()).collect(),
            )]),
            ..Segment::default()
        };
        assert!(segment(&["Moscow", "Kazan"]).matches(&r));
        assert!(!segment(&["kazan"]).matches(&r));
        assert!(!segment(&[]).matches(&r));
        let missing = Segment {
            attributes: BTreeMap::from([("plan".to_owned(), vec!["gold".to_owned()])]),
            ..Segment::default()
        };
        assert!(!missing.matches(&r));
    }
}
