//! The contact center's adapters around the pure `contact` core: what its commands need from
//! the outside world. So far: the webhook block's HTTP call (`webhook`). The event loop, the
//! agent desktop, the chat widget and the contact records come next (see the README's status).

pub mod webhook;
