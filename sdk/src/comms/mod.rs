//! The communication operations, one method per operation of the API.
//!
//! Methods take the ids of the path as arguments and a request type for the body, the way the
//! API's examples write them; the gateway merges the two into the operation's input.

pub mod types;

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
}
