//! Device rooms: one [`DeviceRoom`] actor per device, found or started by the
//! [`Directory`].

pub mod device_room;
pub mod directory;
pub mod history;
mod home;
mod inbound;
mod members;
pub mod messages;
mod mirror;
mod proxy;
mod remote;

pub use device_room::DeviceRoom;
pub use directory::Directory;
