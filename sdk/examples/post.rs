//! Ten lines that post into a room: `KAPABLE_TOKEN=kap_... cargo run -p kapable-sdk --example post`.
use kapable_sdk::{Client, comms::types::*};

#[tokio::main]
async fn main() -> Result<(), kapable_sdk::Error> {
    let url = std::env::var("KAPABLE_URL").unwrap_or("http://127.0.0.1:8787".into());
    let client = Client::new(url, std::env::var("KAPABLE_TOKEN").unwrap_or_default());
    let room = client
        .comms()
        .create_room(CreateRoomRequest { name: "hello".into(), ..Default::default() })
        .await?
        .room;
    let post = PostRoomMessageRequest { body: "Hello from Rust".into(), ..Default::default() };
    let message = client.comms().post_room_message(room.id, post).await?;
    println!("posted message {} in room {}", message.seq, room.id);
    Ok(())
}
