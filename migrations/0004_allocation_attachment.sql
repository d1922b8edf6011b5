-- sriovd schema, version 4: where a held VF's netdev went.
--
-- A CNI plugin moves a VF's netdev into a pod's network namespace under another name. What it needs to put the
-- netdev back (the namespace, the name inside it, the original name, MTU and MAC) is recorded on the allocation,
-- not in files on the node, so a plugin run after a restart or a crash finds it. All NULL, or netns, ifname,
-- original_ifname, original_mtu and attached_at all set.
ALTER TABLE allocations ADD COLUMN attachment_netns TEXT;
ALTER TABLE allocations ADD COLUMN attachment_ifname TEXT;
ALTER TABLE allocations ADD COLUMN attachment_original_ifname TEXT;
ALTER TABLE allocations ADD COLUMN attachment_original_mtu INTEGER
    CHECK (attachment_original_mtu IS NULL OR attachment_original_mtu BETWEEN 68 AND 65535);
ALTER TABLE allocations ADD COLUMN attachment_original_mac TEXT;
ALTER TABLE allocations ADD COLUMN attachment_at TEXT;
