//! Operator commands and the first start's bootstrap: creating orgs and their first secrets.

use anyhow::Context as _;
use serde_json::json;
use uuid::Uuid;

use crate::auth::{Secret, TokenKind};
use crate::config::{AdminAction, Settings};
use crate::store::{NewOrg, Store, StoreError};

/// Runs an `admin` action, printing its result as JSON on stdout.
pub async fn run(store: &Store, action: AdminAction) -> anyhow::Result<()> {
    match action {
        AdminAction::CreateOrg { name } => {
            let created = create_org(store, &name, None).await?;
            println!(
                "{}",
                json!({ "org_id": created.org_id, "app_token": created.app_token.expose() })
            );
        }
        AdminAction::ListOrgs => {
            for org in store.list_orgs().await? {
                println!(
                    "{}",
                    json!({ "org_id": org.id, "name": org.name, "created_at": org.created_at })
                );
            }
        }
    }
    Ok(())
}

/// A created org and the secrets that are shown once.
#[derive(Debug)]
pub struct CreatedOrg {
    /// The org's id.
    pub org_id: Uuid,
    /// Its first app token.
    pub app_token: Secret,
    /// Its first agent's key, when an agent was created with it.
    pub agent_key: Option<Secret>,
}

/// Creates an org with its first app token, and optionally a first agent with a key.
pub async fn create_org(
    store: &Store,
    name: &str,
    agent: Option<&str>,
) -> anyhow::Result<CreatedOrg> {
    let name = name.trim();
    anyhow::ensure!(
        !name.is_empty() && name.chars().count() <= 100,
        "an org name has 1 to 100 characters"
    );
    let app_token = Secret::generate(TokenKind::App);
    let agent_key = agent.map(|_| Secret::generate(TokenKind::Agent));
    let org = NewOrg {
        id: Uuid::now_v7(),
        name: name.to_owned(),
        token: app_token.credential("created with the org"),
        first_agent: agent
            .zip(agent_key.as_ref())
            .map(|(agent, key)| (Uuid::now_v7(), agent.to_owned(), key.credential("first start"))),
    };
    match store.create_org(&org).await {
        Ok(row) => Ok(CreatedOrg { org_id: row.id, app_token, agent_key }),
        Err(StoreError::Duplicate(_)) => anyhow::bail!("an org named `{name}` already exists"),
        Err(error) => Err(error).context("creating the org"),
    }
}

/// On a brand-new database, creates the org `default` with the agent `assistant` and prints
/// their secrets once, with lines ready to copy. Does nothing when any org exists.
pub async fn bootstrap(store: &Store, settings: &Settings) -> anyhow::Result<()> {
    if store.has_orgs().await? {
        return Ok(());
    }
    let created = match create_org(store, "default", Some("assistant")).await {
        Ok(created) => created,
        // Another instance on the same database bootstrapped first.
        Err(_) if store.has_orgs().await? => return Ok(()),
        Err(error) => return Err(error),
    };
    let base = settings.local_base_url();
    let token = created.app_token.expose();
    let key = created.agent_key.as_ref().map_or("", Secret::expose);
    println!(
        "\nkapable-comms: first start. Created the org `default` (id {org}) and its agent \
         `assistant`.\nThese secrets are shown once; store them now.\n\n  \
         app token (org):       {token}\n  agent key (assistant): {key}\n\n\
         Try the API:\n  curl -H \"Authorization: Bearer {token}\" {base}/v1/me\n\n\
         Connect Claude Code as the agent `assistant`:\n  \
         claude mcp add --transport http kapable-chat {base}/v1/mcp/{key}\n",
        org = created.org_id,
    );
    Ok(())
}
