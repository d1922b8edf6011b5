-- sriovd schema, version 6: Docker networks and their endpoints (the libnetwork remote driver).
--
-- (0004 and 0005 may arrive from other branches; migrations are applied by name in order.)
--
-- A network keeps Docker's `--opt` options as given (already validated when Docker created it), so that it
-- outlives sriovd and host restarts: Docker creates a network once and expects the driver to remember it.
CREATE TABLE docker_networks (
    network_id TEXT PRIMARY KEY NOT NULL CHECK (length(network_id) BETWEEN 1 AND 128),
    -- The `com.docker.network.generic` options: {"pf": "0000:3b:00.0", "vlan": "100", ...}.
    options    TEXT NOT NULL CHECK (json_valid(options) AND json_type(options) = 'object'),
    -- The first IPv4 gateway IPAM gave the network (an address without its prefix length), if any.
    gateway    TEXT,
    created_at TEXT NOT NULL
) STRICT;

-- An endpoint holds one allocation (owner docker:<network>/<endpoint>) from CreateEndpoint to DeleteEndpoint.
CREATE TABLE docker_endpoints (
    network_id    TEXT NOT NULL REFERENCES docker_networks (network_id),
    endpoint_id   TEXT NOT NULL CHECK (length(endpoint_id) BETWEEN 1 AND 128),
    allocation_id TEXT NOT NULL UNIQUE REFERENCES allocations (id),
    mac           TEXT NOT NULL,
    -- The SandboxKey while joined (between Join and Leave); NULL otherwise.
    sandbox       TEXT,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (network_id, endpoint_id)
) STRICT;
