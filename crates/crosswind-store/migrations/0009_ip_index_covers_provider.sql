-- Crosswind store, version 9: the IP index covers the cloud and holds only events with an IP.
--
-- `cross-cloud-ips` counts, per source IP, the events of each cloud. On (src_ip, time) that
-- meant reading every event's table row for its provider (a store-wide hunt read the whole
-- table); on (src_ip, provider, time) the index answers on its own, in IP order. The lookups by
-- one IP (its users; where an Entra sign-in placed it) seek the same prefix. Events without an
-- IP (AWS service calls name a service host instead) have no entry.
DROP INDEX events_ip_time;
CREATE INDEX events_ip_time ON events (src_ip, provider, time) WHERE src_ip IS NOT NULL;
