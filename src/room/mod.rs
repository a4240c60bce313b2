//! Device rooms: one [`DeviceRoom`] actor per device, found or started by the
//! [`Directory`].

pub mod cluster_edge;
pub mod device_room;
pub mod directory;
pub mod history;
mod inbound;
mod members;
pub mod messages;
mod proxy;

pub use device_room::DeviceRoom;
pub use directory::Directory;
