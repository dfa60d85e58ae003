-- 0007_read_functions: placeholder, being written in this session.
SELECT 1;
