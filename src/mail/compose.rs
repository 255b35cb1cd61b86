//! Outbound mail: a `send_email` request checked and formatted into the exact message that
//! will be sent, Message-ID included.

use lettre::Message;
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox as MailAddress, Mailboxes, MultiPart, SinglePart};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::store::NewSend;

/// The most recipients one send may have, To, Cc and Bcc together.
pub const MAX_RECIPIENTS: usize = 50;
/// The largest body, text and HTML together, in bytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A checked send, before it is formatted.
#[derive(Debug)]
pub struct Draft<'a> {
    /// The mailbox's org.
    pub org_id: Uuid,
    /// The mailbox.
    pub mailbox_id: Uuid,
    /// The mailbox's address.
    pub mailbox_address: &'a str,
    /// The mailbox's display name.
    pub mailbox_name: Option<&'a str>,
    /// The request.
    pub request: &'a kapable_sdk::comms::types::SendEmailRequest,
    /// The thread this message joins: the ids it references, oldest first.
    pub references: Vec<String>,
}

/// Checks the draft and formats the message; every error names the field at fault.
pub fn compose(draft: &Draft<'_>) -> ApiResult<NewSend> {
    let request = draft.request;
    let from = sender(draft)?;
    let to = recipients("to", Some(&request.to))?;
    if to.is_empty() {
        return Err(ApiError::invalid_field("to", "needs at least one address"));
    }
    let cc = recipients("cc", request.cc.as_deref())?;
    let bcc = recipients("bcc", request.bcc.as_deref())?;
    let count = to.len() + cc.len() + bcc.len();
    if count > MAX_RECIPIENTS {
        let message =
            format!("a send may have at most {MAX_RECIPIENTS} recipients in all, got {count}");
        return Err(ApiError::invalid_field("to", message));
    }
    if request.subject.chars().count() > 998 || request.subject.contains(['\r', '\n']) {
        return Err(ApiError::invalid_field(
            "subject",
            "must be one line of at most 998 characters",
        ));
    }
    let body_size = request.body_text.as_ref().map_or(0, String::len)
        + request.body_html.as_ref().map_or(0, String::len);
    if request.body_text.is_none() && request.body_html.is_none() {
        return Err(ApiError::invalid_field("body_text", "give `body_text`, `body_html`, or both"));
    }
    if body_size > MAX_BODY_BYTES {
        let message = format!("the bodies may be at most {MAX_BODY_BYTES} bytes together");
        return Err(ApiError::invalid_field("body_text", message));
    }

    let domain = draft.mailbox_address.rsplit_once('@').map_or("localhost", |(_, d)| d);
    let message_id = format!("{}@{domain}", Uuid::now_v7().simple());
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(request.subject.clone())
        .message_id(Some(format!("<{message_id}>")));
    for address in &to {
        builder = builder.to(address.clone());
    }
    for address in &cc {
        builder = builder.cc(address.clone());
    }
    if let Some(reply_to) = &request.reply_to {
        builder = builder.reply_to(mailbox("reply_to", reply_to)?);
    }
    let in_reply_to = request.in_reply_to.as_deref().map(bare_id);
    let mut references = draft.references.clone();
    if let Some(parent) = &in_reply_to {
        builder = builder.in_reply_to(format!("<{parent}>"));
        if references.last() != Some(parent) {
            references.push(parent.clone());
        }
    }
    if !references.is_empty() {
        let list: Vec<String> = references.iter().map(|r| format!("<{r}>")).collect();
        builder = builder.header(References(list.join(" ")));
    }
    let message = match (&request.body_text, &request.body_html) {
        (Some(text), Some(html)) => {
            builder.multipart(MultiPart::alternative_plain_html(text.clone(), html.clone()))
        }
        (Some(text), None) => builder
            .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(text.clone())),
        (None, Some(html)) => builder
            .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(html.clone())),
        (None, None) => unreachable!("checked above"),
    }
    .map_err(|e| ApiError::invalid(format!("the message cannot be built: {e}")))?;

    let mut envelope: Vec<String> = Vec::with_capacity(count);
    envelope.extend(to.iter().chain(&cc).chain(&bcc).map(|m| m.email.to_string()));
    Ok(NewSend {
        org_id: draft.org_id,
        mailbox_id: draft.mailbox_id,
        message_id,
        in_reply_to,
        references,
        from: from.to_string(),
        to: to.iter().map(ToString::to_string).collect(),
        cc: cc.iter().map(ToString::to_string).collect(),
        subject: request.subject.clone(),
        body_text: request.body_text.clone(),
        body_html: request.body_html.clone(),
        envelope_from: from.email.to_string(),
        recipients: envelope,
        raw: message.formatted(),
    })
}

/// The `From`: any display name, but the mailbox's own address.
fn sender(draft: &Draft<'_>) -> ApiResult<MailAddress> {
    let own = mailbox("from", draft.mailbox_address)?;
    let Some(from) = draft.request.from.as_deref() else {
        return Ok(MailAddress::new(draft.mailbox_name.map(str::to_owned), own.email));
    };
    let from = mailbox("from", from)?;
    let (given, own_address): (&str, &str) = (from.email.as_ref(), own.email.as_ref());
    if !given.eq_ignore_ascii_case(own_address) {
        return Err(ApiError::invalid_field(
            "from",
            format!(
                "the address must be the mailbox's own, {}; the display name is free",
                own.email
            ),
        ));
    }
    Ok(MailAddress::new(from.name, own.email))
}

fn mailbox(field: &str, text: &str) -> ApiResult<MailAddress> {
    text.trim().parse::<MailAddress>().map_err(|_| {
        ApiError::invalid_field(field, format!("`{}` is not an email address", text.trim()))
    })
}

fn recipients(field: &str, list: Option<&str>) -> ApiResult<Vec<MailAddress>> {
    let Some(list) = list.filter(|l| !l.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let parsed: Mailboxes = list.parse().map_err(|_| {
        ApiError::invalid_field(field, format!("`{list}` is not a list of email addresses"))
    })?;
    Ok(parsed.into_iter().collect())
}

/// A Message-ID without its angle brackets.
fn bare_id(id: &str) -> String {
    id.trim().trim_start_matches('<').trim_end_matches('>').to_owned()
}

/// The `References` header, a list of Message-IDs.
#[derive(Debug, Clone)]
struct References(String);

impl Header for References {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("References")
    }

    fn parse(text: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(text.to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}
