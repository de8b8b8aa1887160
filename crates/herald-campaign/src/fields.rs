//! The campaign format as data: every field, its shape and a one-line description. The
//! validator checks unknown and missing keys against these tables, and `schema` turns the same
//! tables into `campaigns/schema.json`, so the editor's completion and Herald's checks cannot
//! drift apart.

/// The shape of a field's value.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// Any string.
    Str,
    /// A string matching a regular expression (JSON Schema dialect).
    Pattern(&'static str),
    /// One of these strings.
    Enum(&'static [&'static str]),
    /// An integer at least this large.
    Int(i64),
    /// true or false.
    Bool,
    /// A mapping with these fields (and no others).
    Object(&'static [Field]),
    /// A mapping with these fields, and any other key whose value has the given shape.
    Open(&'static [Field], &'static Shape),
    /// A mapping of any keys to values of one shape.
    MapOf(&'static Shape),
    /// A list.
    ListOf(&'static Shape),
    /// A list of at most this many items.
    ListUpTo(&'static Shape, usize),
    /// Any one of these shapes.
    OneOf(&'static [Shape]),
}

/// One field.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The key.
    pub name: &'static str,
    /// Must it be present.
    pub required: bool,
    /// What it is for.
    pub doc: &'static str,
    /// Its value.
    pub shape: Shape,
}

const fn field(name: &'static str, required: bool, doc: &'static str, shape: Shape) -> Field {
    Field {
        name,
        required,
        doc,
        shape,
    }
}

/// Durations: `90s`, `10m`, `48h`, `7d`.
pub const DURATION: &str = "^[0-9]+[smhd]$";
const STR_OR_LIST: Shape = Shape::OneOf(&[Shape::Str, Shape::ListOf(&Shape::Str)]);
const PRESETS: &[&str] = &["us-tcpa", "us-fl", "us-ok", "ru-business", "eu-business"];
const URL: Shape = Shape::Pattern("^https://");
/// A template language code: not empty, no blanks.
const LANGUAGE_CODE: Shape = Shape::Pattern("^\\S+$");

/// `audience.where`'s fixed keys (any other key is an attribute).
pub const AUDIENCE_WHERE: [Field; 2] = [
    field(
        "tags",
        false,
        "tags the recipient must all have",
        Shape::ListOf(&Shape::Str),
    ),
    field(
        "country",
        false,
        "ISO 3166 country (the phone's, or the row's `country`)",
        Shape::Pattern("^[A-Za-z]{2}$"),
    ),
];

/// `audience`.
pub const AUDIENCE: &[Field] = &[
    field(
        "source",
        true,
        "CSV or JSONL file, relative to the campaign file",
        Shape::Str,
    ),
    AUDIENCE_WHERE_FIELD,
    AUDIENCE_DEFAULT_COUNTRY_FIELD,
];

/// `audience` of a campaign whose audience comes with it (uploaded over the admin API, or
/// stored with its run): `source` may be omitted, the audience being the uploaded file.
pub const AUDIENCE_SOURCE_OPTIONAL: &[Field] = &[
    field(
        "source",
        false,
        "the uploaded audience's file name, or omitted",
        Shape::Str,
    ),
    AUDIENCE_WHERE_FIELD,
    AUDIENCE_DEFAULT_COUNTRY_FIELD,
];

const AUDIENCE_WHERE_FIELD: Field = field(
    "where",
    false,
    "segment filter: every listed tag, the country, and attribute values must match",
    Shape::Open(&AUDIENCE_WHERE, &STR_OR_LIST),
);

const AUDIENCE_DEFAULT_COUNTRY_FIELD: Field = field(
    "default_country",
    false,
    "country for phones written in national format",
    Shape::Pattern("^[A-Za-z]{2}$"),
);

/// `template.header`.
pub const HEADER: &[Field] = &[
    field("image", false, "image URL", URL),
    field("video", false, "video URL", URL),
    field("document", false, "document URL", URL),
    field(
        "text",
        false,
        "header text parameter (may use {{ attr }})",
        Shape::Str,
    ),
];

/// `template.buttons[].on_reply` as a mapping.
pub const ON_REPLY: &[Field] = &[field(
    "tag",
    true,
    "tag the recipient when they tap",
    Shape::Str,
)];

/// `template.buttons[]`.
pub const BUTTON: &[Field] = &[
    field(
        "payload",
        true,
        "quick-reply payload, in the template's button order",
        Shape::Str,
    ),
    field(
        "on_reply",
        false,
        "what a tap does: `opt_out`, or `{ tag: name }`",
        Shape::OneOf(&[Shape::Enum(&["opt_out"]), Shape::Object(ON_REPLY)]),
    ),
];

/// The most quick-reply buttons a WhatsApp template has.
pub const MAX_BUTTONS: usize = 10;

/// `template`.
pub const TEMPLATE: &[Field] = &[
    field(
        "name",
        true,
        "provider-approved template name",
        Shape::Pattern("^[a-z0-9_]+$"),
    ),
    field(
        "language",
        true,
        "template language: one code, or per recipient locale with a `default`",
        Shape::OneOf(&[LANGUAGE_CODE, Shape::MapOf(&LANGUAGE_CODE)]),
    ),
    field(
        "header",
        false,
        "media or text header (one of image, video, document, text)",
        Shape::Object(HEADER),
    ),
    field(
        "params",
        false,
        "named body parameters: text with {{ attr | default('…') }}",
        Shape::MapOf(&Shape::Str),
    ),
    field(
        "buttons",
        false,
        "quick-reply buttons (at most 10)",
        Shape::ListUpTo(&Shape::Object(BUTTON), MAX_BUTTONS),
    ),
];

/// `schedule`.
pub const SCHEDULE: &[Field] = &[
    field(
        "at",
        false,
        "local wall time of a one-off send, YYYY-MM-DDTHH:MM",
        Shape::Pattern("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2})?$"),
    ),
    field(
        "in",
        false,
        "`recipient` (each recipient's zone) or an IANA zone",
        Shape::Str,
    ),
    field(
        "cron",
        false,
        "5-field cron expression for a recurring campaign",
        Shape::Str,
    ),
    field(
        "timezone",
        false,
        "IANA zone the cron expression runs in",
        Shape::Str,
    ),
    field(
        "expires_after",
        false,
        "a delivery not sent this long after its scheduled instant expires",
        Shape::Pattern(DURATION),
    ),
    field(
        "catch_up",
        false,
        "cron only: after fires were missed while Herald was down, `latest` (default) runs the newest one, `none` runs none",
        Shape::Enum(CATCH_UP),
    ),
    field(
        "overlap",
        false,
        "cron only: when a fire comes while the previous run still has deliveries pending, `skip` (default) skips it, `allow` runs both",
        Shape::Enum(OVERLAP),
    ),
];

/// The values of `schedule.catch_up`.
pub const CATCH_UP: &[&str] = &["latest", "none"];
/// The values of `schedule.overlap`.
pub const OVERLAP: &[&str] = &["skip", "allow"];

/// `send_window`.
pub const SEND_WINDOW: &[Field] = &[
    field(
        "preset",
        false,
        "law presets (us-tcpa, us-fl, us-ok) limit; convention presets (ru-business, eu-business) set default hours",
        Shape::OneOf(&[Shape::Enum(PRESETS), Shape::ListOf(&Shape::Enum(PRESETS))]),
    ),
    field(
        "hours",
        false,
        "days (mon-fri, sat, daily, …) to HH:MM-HH:MM intervals; a window needs hours or a preset",
        Shape::MapOf(&STR_OR_LIST),
    ),
    field(
        "holidays",
        false,
        "calendars (ru, us), `country`, or YYYY-MM-DD dates",
        Shape::ListOf(&Shape::Str),
    ),
    field(
        "unknown_timezone",
        false,
        "`conservative` or an IANA zone to assume",
        Shape::Str,
    ),
];

/// `frequency_cap[]`.
pub const CAP: &[Field] = &[
    field("max", true, "most messages in the period", Shape::Int(1)),
    field(
        "per",
        true,
        "period: 24h, 7d, …",
        Shape::Pattern("^[0-9]+[hd]$"),
    ),
    field(
        "scope",
        false,
        "campaign, purpose (default) or all",
        Shape::Enum(&["campaign", "purpose", "all"]),
    ),
    field(
        "calendar",
        false,
        "count local calendar days instead of a rolling period",
        Shape::Bool,
    ),
];

/// `rate_limit`.
pub const RATE_LIMIT: &[Field] = &[field(
    "per_second",
    true,
    "messages per second; may only lower the sender's own limit",
    Shape::Int(1),
)];

/// The top level.
pub const CAMPAIGN: &[Field] = &[
    field(
        "id",
        true,
        "unique id: lowercase letters, digits, dashes",
        Shape::Pattern("^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$"),
    ),
    field("name", false, "human-readable name", Shape::Str),
    field("sender", false, "a sender from the config file", Shape::Str),
    field(
        "purpose",
        true,
        "decides the consent needed",
        Shape::Enum(&["marketing", "transactional", "service"]),
    ),
    field("audience", true, "who receives it", Shape::Object(AUDIENCE)),
    field(
        "template",
        true,
        "what they receive",
        Shape::Object(TEMPLATE),
    ),
    field(
        "schedule",
        true,
        "when: `at` (one-off) or `cron` (recurring)",
        Shape::Object(SCHEDULE),
    ),
    field(
        "send_window",
        false,
        "when sending is allowed, in each recipient's local time; required for marketing (without it a transactional or service campaign sends at any hour)",
        Shape::Object(SEND_WINDOW),
    ),
    field(
        "frequency_cap",
        false,
        "per-recipient caps",
        Shape::ListOf(&Shape::Object(CAP)),
    ),
    field("rate_limit", false, "throughput", Shape::Object(RATE_LIMIT)),
    field(
        "delivery",
        false,
        "at_most_once (default) or at_least_once",
        Shape::Enum(&["at_most_once", "at_least_once"]),
    ),
    field(
        "spread",
        false,
        "release deliveries due together over this long (default 10m)",
        Shape::Pattern(DURATION),
    ),
];
