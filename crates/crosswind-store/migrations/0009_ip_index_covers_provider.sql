-- Crosswind store, version 9: the IP index covers the cloud and the user, and holds only events
-- with an IP.
--
-- `cross-cloud-ips` counts, per source IP, the events and users of each cloud. On (src_ip, time)
-- that meant reading every event's table row for its provider and user (a store-wide hunt read
-- the whole table, and each IP's users were a random page read per event); on
-- (src_ip, provider, time, user_name) the index answers on its own, in IP order. Where an Entra
-- sign-in placed an IP seeks the (src_ip, provider) prefix, newest first. Events without an IP
-- (AWS service calls name a service host instead) have no entry.
DROP INDEX events_ip_time;
CREATE INDEX events_ip_time ON events (src_ip, provider, time, user_name)
    WHERE src_ip IS NOT NULL;

-- The hunts that list one or a few kinds of signal (spray sources, recon bursts, post-compromise)
-- read those kinds only, not every signal's body.
CREATE INDEX signals_signal_time ON signals (signal, time);
