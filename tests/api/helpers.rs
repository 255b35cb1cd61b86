//! `TestApp`: a gateway started for one test, with an org, an agent and their secrets.

use kapable_comms::admin;
use kapable_comms::config::{DatabaseArgs, Settings};
use kapable_comms::state::App;
use kapable_tools::database::ScratchDatabase;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use uuid::Uuid;

/// Runs each named scenario `async fn NAME(app: TestApp)` once per database.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let app = $crate::helpers::TestApp::spawn_sqlite().await;
                    super::$name(app).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(app) = $crate::helpers::TestApp::spawn_postgres().await else {
                        eprintln!("skipped: set TEST_DATABASE_URL to run on Postgres");
                        return;
                    };
                    super::$name(app).await;
                }
            )*
        }
    };
}

/// An org of the test database with its credentials.
#[derive(Debug, Clone)]
pub struct TestOrg {
    pub org_id: Uuid,
    pub token: String,
    pub agent_id: Uuid,
    pub agent_key: String,
}

/// A running gateway and what a test needs to talk to it.
pub struct TestApp {
    pub address: String,
    pub http: reqwest::Client,
    /// The org most tests act in, with its first agent `agent`.
    pub org: TestOrg,
    pub database_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    database: Option<ScratchDatabase>,
}

impl TestApp {
    /// A plain text message from the org into `room_id`, to hand to the store directly.
    pub fn org_message(
        &self,
        room_id: Uuid,
        body: &impl ToString,
    ) -> kapable_comms::store::NewMessage {
        kapable_comms::store::NewMessage {
            org_id: self.org.org_id,
            room_id,
            sender_kind: "org",
            sender_id: self.org.org_id,
            sender_member_id: None,
            sender_agent_id: None,
            sender_name: "org".into(),
            body: body.to_string(),
            kind: "text".into(),
            metadata: serde_json::json!({}),
            reply_to: None,
            idempotency_key: None,
        }
    }

    /// A gateway on a fresh SQLite file.
    pub async fn spawn_sqlite() -> TestApp {
        Self::spawn(ScratchDatabase::sqlite()).await
    }

    /// A gateway on a fresh Postgres database, if `TEST_DATABASE_URL` is set.
    pub async fn spawn_postgres() -> Option<TestApp> {
        Some(Self::spawn(ScratchDatabase::postgres().await?).await)
    }

    async fn spawn(database: ScratchDatabase) -> TestApp {
        let database_url = database.url.clone();
        let store = kapable_comms::cli::open(&database_url).await.expect("opening the database");
        let org = create_org(&store, "test-org").await;
        let (address, shutdown) = start(store, &database_url, |_| {}).await;
        TestApp {
            address,
            http: reqwest::Client::new(),
            org,
            database_url,
            shutdown: Some(shutdown),
            database: Some(database),
        }
    }

    /// The same database served again with another presence TTL, in seconds.
    pub async fn with_presence_ttl(self, secs: u32) -> TestApp {
        self.restart(|settings| settings.presence_ttl_secs = secs).await
    }

    /// The same database served again, sending mail through the SMTP relay at `url`.
    pub async fn with_smtp(self, url: &str) -> TestApp {
        let url = url.to_owned();
        self.restart(move |settings| settings.smtp_url = Some(url)).await
    }

    /// Stops this gateway and serves its database again with changed settings, on a new port.
    pub async fn restart(mut self, change: impl FnOnce(&mut Settings)) -> TestApp {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let store = kapable_comms::cli::open(&self.database_url).await.unwrap();
        let (address, shutdown) = start(store, &self.database_url, change).await;
        self.address = address;
        self.shutdown = Some(shutdown);
        self
    }

    /// A second gateway on the same database, as a load balancer's other backend would be;
    /// its address. It stops when the returned guard drops.
    pub async fn second_instance(&self) -> (String, oneshot::Sender<()>) {
        self.second_instance_with(|_| {}).await
    }

    /// Like [`TestApp::second_instance`], with its settings changed by `change`.
    pub async fn second_instance_with(
        &self,
        change: impl FnOnce(&mut Settings),
    ) -> (String, oneshot::Sender<()>) {
        let store = kapable_comms::cli::open(&self.database_url).await.unwrap();
        start(store, &self.database_url, change).await
    }

    /// The store of the test database, for what no operation does (such as pruning).
    pub async fn store(&self) -> kapable_comms::store::Store {
        kapable_comms::cli::open(&self.database_url).await.unwrap()
    }

    /// Another org in the same database, for isolation tests.
    pub async fn other_org(&self) -> TestOrg {
        let store = kapable_comms::cli::open(&self.database_url).await.unwrap();
        let org = create_org(&store, &format!("other-{}", Uuid::now_v7().simple())).await;
        store.close().await;
        org
    }

    /// A new agent of the test org and a key for it.
    pub async fn agent(&self, name: &str) -> (Uuid, String) {
        use kapable_sdk::comms::types::{CreateAgentRequest, MintAgentKeyRequest};
        let org = self.sdk(&self.org.token);
        let request = CreateAgentRequest { name: name.into(), ..Default::default() };
        let agent = org.comms().create_agent(request).await.expect("creating an agent");
        let key = org
            .comms()
            .mint_agent_key(agent.id, MintAgentKeyRequest { label: "test".into() })
            .await
            .expect("minting a key");
        (agent.id, key.key)
    }

    /// A new room of the test org, created with the org token.
    pub async fn room(&self, name: &str) -> kapable_sdk::comms::types::Room {
        use kapable_sdk::comms::types::CreateRoomRequest;
        let request = CreateRoomRequest { name: name.into(), ..Default::default() };
        self.sdk(&self.org.token).comms().create_room(request).await.expect("a room").room
    }

    /// Makes the agent a participant of the room, with the org token.
    pub async fn add_to_room(&self, room_id: Uuid, agent_id: Uuid) {
        use kapable_sdk::comms::types::InviteAgentRequest;
        let request = InviteAgentRequest { agent_id, ..Default::default() };
        let org = self.sdk(&self.org.token);
        org.comms().invite_agent_to_room(room_id, request).await.expect("adding the agent");
    }

    /// The SDK client acting with `token`.
    pub fn sdk(&self, token: &str) -> kapable_sdk::Client {
        kapable_sdk::Client::new(&self.address, token)
    }

    /// A REST call: `method path` with an optional token and JSON body; the status and the body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, body)
    }

    /// An MCP JSON-RPC request to `/v1/mcp/{token}`; the HTTP status and the JSON-RPC answer.
    pub async fn mcp(&self, token: &str, method: &str, params: Value) -> (StatusCode, Value) {
        let body =
            serde_json::json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
        let response = self
            .http
            .post(format!("{}/v1/mcp/{token}", self.address))
            .header("accept", "application/json, text/event-stream")
            .json(&body)
            .send()
            .await
            .expect("the server answers");
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Calls an MCP tool and returns its result object.
    pub async fn tool(&self, token: &str, name: &str, arguments: Value) -> Value {
        let (status, answer) = self
            .mcp(token, "tools/call", serde_json::json!({ "name": name, "arguments": arguments }))
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer["result"].clone()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // The gateway stops before its database is dropped.
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.database.take();
    }
}

/// Serves `store` on a free port until the returned sender fires.
async fn start(
    store: kapable_comms::store::Store,
    database_url: &str,
    change: impl FnOnce(&mut Settings),
) -> (String, oneshot::Sender<()>) {
    // The gateway's warnings and errors, shown with the output of a test that fails.
    let _ = tracing_subscriber::fmt().with_env_filter("warn").with_test_writer().try_init();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let address = format!("http://{}", listener.local_addr().unwrap());
    let mut settings = Settings {
        listen: listener.local_addr().unwrap(),
        database: DatabaseArgs { database_url: database_url.to_owned() },
        public_host: vec![],
        cors_origin: vec![],
        presence_ttl_secs: 60,
        event_retention_secs: 7 * 24 * 3600,
        smtp_url: None,
        outbox_dir: std::env::temp_dir().join(format!("kapable-outbox-{}", Uuid::now_v7())),
        max_body_bytes: 1024 * 1024,
        max_streams_per_token: 64,
        limits: Default::default(),
        sending: Default::default(),
        telegram: Default::default(),
    };
    change(&mut settings);
    let ctx = App::new(store, settings);
    let (shutdown, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let stop = async {
            let _ = stopped.await;
        };
        kapable_comms::server::serve(ctx, listener, stop).await.expect("the server runs");
    });
    (address, shutdown)
}

async fn create_org(store: &kapable_comms::store::Store, name: &str) -> TestOrg {
    let created = admin::create_org(store, name, Some("agent")).await.expect("creating an org");
    let agent_key = created.agent_key.expect("the org was created with an agent");
    let token = created.app_token.expose().to_owned();
    let agent_id = store
        .list_agents(created.org_id, None, 10)
        .await
        .expect("listing agents")
        .into_iter()
        .map(kapable_sdk::comms::types::Agent::from)
        .find(|agent| agent.name == "agent")
        .expect("the first agent")
        .id;
    TestOrg { org_id: created.org_id, token, agent_id, agent_key: agent_key.expose().to_owned() }
}
