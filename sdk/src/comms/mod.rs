//! The communication operations, one method per operation of the API.
//!
//! Methods take the ids of the path as arguments and a request type for the body, the way the
//! API's examples write them; the gateway merges the two into the operation's input.

pub mod types;

use futures_util::Stream;
use reqwest::Method;
use uuid::Uuid;

use crate::{Client, Error};
use types::*;

/// The communication operations of a [`Client`].
#[derive(Debug, Clone, Copy)]
pub struct Comms<'a> {
    client: &'a Client,
}

impl<'a> Comms<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Self { client }
    }

    /// Who the client's token acts as (`whoami`).
    pub async fn whoami(&self) -> Result<Whoami, Error> {
        self.client.get("/v1/me", &()).await
    }

    /// Creates an agent, or updates the one of the same name (`create_agent`).
    pub async fn create_agent(&self, request: CreateAgentRequest) -> Result<Agent, Error> {
        self.client.send(Method::POST, "/v1/agents", &request).await
    }

    /// Lists the org's agents, first page (`list_agents`).
    pub async fn list_agents(&self) -> Result<AgentList, Error> {
        self.list_agents_page(PageQuery::default()).await
    }

    /// Lists one page of the org's agents (`list_agents`).
    pub async fn list_agents_page(&self, query: ListAgentsQuery) -> Result<AgentList, Error> {
        self.client.get("/v1/agents", &query).await
    }

    /// Soft-deletes an agent; its keys stop working at once (`delete_agent`).
    pub async fn delete_agent(&self, agent_id: Uuid) -> Result<(), Error> {
        self.client.delete(&format!("/v1/agents/{agent_id}")).await
    }

    /// Mints a key for an agent; the plaintext key is in the answer only (`mint_agent_key`).
    pub async fn mint_agent_key(
        &self,
        agent_id: Uuid,
        request: MintAgentKeyRequest,
    ) -> Result<AgentKeyCreated, Error> {
        let path = format!("/v1/agents/{agent_id}/keys");
        self.client.send(Method::POST, &path, &request).await
    }

    /// Lists an agent's active keys, without their secrets (`list_agent_keys`).
    pub async fn list_agent_keys(
        &self,
        agent_id: Uuid,
        query: PageQuery,
    ) -> Result<AgentKeyList, Error> {
        self.client.get(&format!("/v1/agents/{agent_id}/keys"), &query).await
    }

    /// Revokes an agent key; it is refused from the next request on (`revoke_agent_key`).
    pub async fn revoke_agent_key(&self, agent_id: Uuid, key_id: Uuid) -> Result<(), Error> {
        self.client.delete(&format!("/v1/agents/{agent_id}/keys/{key_id}")).await
    }

    /// Mints an app token for the org; the plaintext token is in the answer only
    /// (`mint_app_token`).
    pub async fn mint_app_token(
        &self,
        org_id: Uuid,
        request: MintAppTokenRequest,
    ) -> Result<AppTokenCreated, Error> {
        let path = format!("/v1/orgs/{org_id}/app-tokens");
        self.client.send(Method::POST, &path, &request).await
    }

    /// Lists the org's active app tokens, without their secrets (`list_app_tokens`).
    pub async fn list_app_tokens(
        &self,
        org_id: Uuid,
        query: PageQuery,
    ) -> Result<AppTokenList, Error> {
        self.client.get(&format!("/v1/orgs/{org_id}/app-tokens"), &query).await
    }

    /// Revokes an app token (`revoke_app_token`).
    pub async fn revoke_app_token(&self, org_id: Uuid, token_id: Uuid) -> Result<(), Error> {
        self.client.delete(&format!("/v1/orgs/{org_id}/app-tokens/{token_id}")).await
    }

    /// Creates a room; an agent creator becomes its owner (`create_room`).
    pub async fn create_room(&self, request: CreateRoomRequest) -> Result<RoomResponse, Error> {
        self.client.send(Method::POST, "/v1/rooms", &request).await
    }

    /// Lists rooms, first page: the org's, or the agent's own (`list_rooms`).
    pub async fn list_rooms(&self) -> Result<RoomList, Error> {
        self.list_rooms_page(PageQuery::default()).await
    }

    /// Lists one page of rooms (`list_rooms`).
    pub async fn list_rooms_page(&self, query: ListRoomsQuery) -> Result<RoomList, Error> {
        self.client.get("/v1/rooms", &query).await
    }

    /// A room with its participants and their roles (`get_room`).
    pub async fn get_room(&self, room_id: Uuid) -> Result<RoomDetail, Error> {
        self.client.get(&format!("/v1/rooms/{room_id}"), &()).await
    }

    /// Creates an invite token for a room; the token is in the answer only
    /// (`create_room_invite`).
    pub async fn create_invite(
        &self,
        room_id: Uuid,
        request: CreateInviteRequest,
    ) -> Result<InviteCreated, Error> {
        let path = format!("/v1/rooms/{room_id}/invites");
        self.client.send(Method::POST, &path, &request).await
    }

    /// Lists a room's active invites (`list_room_invites`).
    pub async fn list_room_invites(
        &self,
        room_id: Uuid,
        query: PageQuery,
    ) -> Result<InviteList, Error> {
        self.client.get(&format!("/v1/rooms/{room_id}/invites"), &query).await
    }

    /// Revokes a room invite (`revoke_room_invite`).
    pub async fn revoke_room_invite(&self, room_id: Uuid, invite_id: Uuid) -> Result<(), Error> {
        self.client.post_empty(&format!("/v1/rooms/{room_id}/invites/{invite_id}/revoke")).await
    }

    /// Joins a room with an invite token (`join_room`). A guest gets a `participant_token`.
    pub async fn join_room(
        &self,
        token: &str,
        request: JoinRoomRequest,
    ) -> Result<JoinRoomResponse, Error> {
        self.client.send(Method::POST, &format!("/v1/rooms/join/{token}"), &request).await
    }

    /// Posts a message in a room (`post_room_message`).
    pub async fn post_room_message(
        &self,
        room_id: Uuid,
        request: PostRoomMessageRequest,
    ) -> Result<RoomMessage, Error> {
        let path = format!("/v1/rooms/{room_id}/messages");
        self.client.send(Method::POST, &path, &request).await
    }

    /// Lists a room's messages, newest first or `after` a cursor (`list_room_messages`).
    pub async fn list_room_messages(
        &self,
        room_id: Uuid,
        query: ListRoomMessagesQuery,
    ) -> Result<RoomMessageList, Error> {
        self.client.get(&format!("/v1/rooms/{room_id}/messages"), &query).await
    }

    /// Reacts to a message or attaches metadata to it (`annotate_message`).
    pub async fn annotate_message(
        &self,
        room_id: Uuid,
        message_id: Uuid,
        request: AnnotateMessageRequest,
    ) -> Result<RoomMessage, Error> {
        let path = format!("/v1/rooms/{room_id}/messages/{message_id}/annotations");
        self.client.send(Method::POST, &path, &request).await
    }

    /// Makes an agent of the org a member of a room (`invite_agent_to_room`).
    pub async fn invite_agent_to_room(
        &self,
        room_id: Uuid,
        request: InviteAgentRequest,
    ) -> Result<Participant, Error> {
        let path = format!("/v1/rooms/{room_id}/agents");
        self.client.send(Method::POST, &path, &request).await
    }

    /// Removes an agent from a room (`revoke_room_agent`).
    pub async fn revoke_room_agent(&self, room_id: Uuid, agent_id: Uuid) -> Result<(), Error> {
        self.client.post_empty(&format!("/v1/rooms/{room_id}/agents/{agent_id}/revoke")).await
    }

    /// Reports an agent's presence in a room (`heartbeat`).
    pub async fn heartbeat(
        &self,
        room_id: Uuid,
        agent_id: Uuid,
        request: HeartbeatRequest,
    ) -> Result<PresenceEntry, Error> {
        let path = format!("/v1/rooms/{room_id}/agents/{agent_id}/heartbeat");
        self.client.send(Method::POST, &path, &request).await
    }

    /// The presence of a room's agents (`room_presence`).
    pub async fn room_presence(&self, room_id: Uuid) -> Result<RoomPresence, Error> {
        self.client.get(&format!("/v1/rooms/{room_id}/presence"), &()).await
    }

    /// Waits for the events of the caller's own stream after a cursor (`wait_for_events`).
    pub async fn wait_for_events(&self, query: WaitForEventsQuery) -> Result<EventList, Error> {
        self.client.get("/v1/events", &query).await
    }

    /// A single-use ticket that opens a stream as `?ticket=` (`create_stream_ticket`).
    pub async fn create_stream_ticket(&self) -> Result<StreamTicket, Error> {
        self.client.send(Method::POST, "/v1/stream-tickets", &serde_json::json!({})).await
    }

    /// Follows a room's events (`GET /v1/rooms/{room_id}/stream`) from `after`, or from now,
    /// reconnecting by itself with `Last-Event-ID` when the connection drops.
    pub fn follow_room(
        &self,
        room_id: Uuid,
        after: Option<String>,
    ) -> impl Stream<Item = Result<StreamEvent, Error>> + Send + 'static {
        crate::stream::follow(self.client.clone(), format!("/v1/rooms/{room_id}/stream"), after)
    }

    /// Follows an agent's events: its rooms' and its own invitations
    /// (`GET /v1/agents/{agent_id}/stream`), reconnecting by itself.
    pub fn follow_agent(
        &self,
        agent_id: Uuid,
        after: Option<String>,
    ) -> impl Stream<Item = Result<StreamEvent, Error>> + Send + 'static {
        crate::stream::follow(self.client.clone(), format!("/v1/agents/{agent_id}/stream"), after)
    }

    /// Creates a mailbox, or updates the org's mailbox with that address (`create_mailbox`).
    pub async fn create_mailbox(&self, request: CreateMailboxRequest) -> Result<Mailbox, Error> {
        self.client.send(Method::POST, "/v1/mailboxes", &request).await
    }

    /// Deletes a mailbox (`delete_mailbox`).
    pub async fn delete_mailbox(&self, mailbox_id: Uuid) -> Result<(), Error> {
        self.client.delete(&format!("/v1/mailboxes/{mailbox_id}")).await
    }

    /// An agent's mailboxes (`list_agent_mailboxes`).
    pub async fn list_agent_mailboxes(&self, agent_id: Uuid) -> Result<MailboxList, Error> {
        self.client.get(&format!("/v1/agents/{agent_id}/mailboxes"), &()).await
    }

    /// Creates a channel on a mailbox; the secret is in the answer only (`create_channel`).
    pub async fn create_channel(
        &self,
        request: CreateChannelRequest,
    ) -> Result<ChannelCreated, Error> {
        self.client.send(Method::POST, "/v1/channels", &request).await
    }

    /// A mailbox's channels, without secrets (`list_channels`).
    pub async fn list_channels(&self, mailbox_id: Uuid) -> Result<ChannelList, Error> {
        self.client.get(&format!("/v1/mailboxes/{mailbox_id}/channels"), &()).await
    }

    /// Delivers a raw RFC 5322 message to an email channel; the client's token must be the
    /// channel's secret (`receive_email`).
    pub async fn receive_email(&self, channel_id: Uuid, raw: &[u8]) -> Result<MailMessage, Error> {
        let path = format!("/v1/channels/{channel_id}/inbound");
        self.client.send_raw(&path, "message/rfc822", raw.to_vec()).await
    }

    /// A mailbox's messages, newest first (`list_mailbox_messages`).
    pub async fn list_messages(
        &self,
        mailbox_id: Uuid,
        query: ListMessagesQuery,
    ) -> Result<MailMessageList, Error> {
        self.client.get(&format!("/v1/mailboxes/{mailbox_id}/messages"), &query).await
    }

    /// One email message (`get_message`).
    pub async fn get_message(&self, message_id: Uuid) -> Result<MailMessage, Error> {
        self.client.get(&format!("/v1/messages/{message_id}"), &()).await
    }

    /// Sends an email from a mailbox; answers once the send is stored (`send_email`).
    pub async fn send_email(
        &self,
        mailbox_id: Uuid,
        request: SendEmailRequest,
    ) -> Result<SendEmailResponse, Error> {
        let path = format!("/v1/mailboxes/{mailbox_id}/send");
        self.client.send(Method::POST, &path, &request).await
    }

    /// A mailbox's send limits: effective, defaults, override and usage (`get_mailbox_quotas`).
    pub async fn get_mailbox_quotas(&self, mailbox_id: Uuid) -> Result<MailboxQuotas, Error> {
        self.client.get(&format!("/v1/mailboxes/{mailbox_id}/quotas"), &()).await
    }

    /// Overrides a mailbox's send limits (`set_mailbox_quotas`).
    pub async fn set_mailbox_quotas(
        &self,
        mailbox_id: Uuid,
        request: SetMailboxQuotasRequest,
    ) -> Result<MailboxQuotas, Error> {
        let path = format!("/v1/mailboxes/{mailbox_id}/quotas");
        self.client.send(Method::PUT, &path, &request).await
    }

    /// Puts a mailbox back on the default limits (`delete_mailbox_quotas`).
    pub async fn delete_mailbox_quotas(&self, mailbox_id: Uuid) -> Result<(), Error> {
        self.client.delete(&format!("/v1/mailboxes/{mailbox_id}/quotas")).await
    }

    /// Sends of a mailbox refused by its limits, newest first (`list_rate_limit_hits`).
    pub async fn list_rate_limit_hits(
        &self,
        mailbox_id: Uuid,
        query: PageQuery,
    ) -> Result<RateLimitHitList, Error> {
        self.client.get(&format!("/v1/mailboxes/{mailbox_id}/send-audit/hits"), &query).await
    }

    /// The org's send audit, newest first (`list_send_audit`).
    pub async fn list_send_audit(
        &self,
        org_id: Uuid,
        query: SendAuditQuery,
    ) -> Result<SendAuditPage, Error> {
        self.client.get(&format!("/v1/orgs/{org_id}/send-audit"), &query).await
    }

    /// The anomalies found in the org's send audit, newest first (`list_anomalies`).
    pub async fn list_anomalies(
        &self,
        org_id: Uuid,
        query: PageQuery,
    ) -> Result<AnomalyList, Error> {
        self.client.get(&format!("/v1/orgs/{org_id}/anomalies"), &query).await
    }

    /// Follows the org's anomaly feed from `after` (or from now), resuming by itself.
    pub fn follow_anomalies(
        &self,
        org_id: Uuid,
        after: Option<String>,
    ) -> impl Stream<Item = Result<StreamEvent, Error>> + Send + 'static {
        crate::stream::follow(self.client.clone(), format!("/v1/orgs/{org_id}/anomaly-feed"), after)
    }

    /// A webhook channel's deliveries, newest first (`list_webhook_deliveries`).
    pub async fn list_webhook_deliveries(
        &self,
        channel_id: Uuid,
        query: PageQuery,
    ) -> Result<WebhookDeliveryList, Error> {
        self.client.get(&format!("/v1/channels/{channel_id}/deliveries"), &query).await
    }

    /// Links a room to a Telegram chat the bot is in (`link_telegram`).
    pub async fn link_telegram(
        &self,
        room_id: Uuid,
        request: LinkTelegramRequest,
    ) -> Result<Bridge, Error> {
        let path = format!("/v1/rooms/{room_id}/bridges/telegram");
        self.client.send(Method::POST, &path, &request).await
    }

    /// A single-use link that connects a Telegram chat to a room (`telegram_setup_url`).
    pub async fn telegram_setup_url(&self, room_id: Uuid) -> Result<TelegramSetupUrl, Error> {
        self.client.get(&format!("/v1/rooms/{room_id}/bridges/telegram/setup-url"), &()).await
    }

    /// A room's active bridges (`list_bridges`).
    pub async fn list_bridges(&self, room_id: Uuid) -> Result<BridgeList, Error> {
        self.client.get(&format!("/v1/rooms/{room_id}/bridges"), &()).await
    }

    /// Unlinks a chat; relaying stops at once (`revoke_bridge`).
    pub async fn revoke_bridge(&self, room_id: Uuid, bridge_id: Uuid) -> Result<(), Error> {
        self.client.post_empty(&format!("/v1/rooms/{room_id}/bridges/{bridge_id}/revoke")).await
    }
}
