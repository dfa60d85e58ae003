-- 0006_heartbeat_and_operator_functions: placeholder, being written in this session.
SELECT 1;
