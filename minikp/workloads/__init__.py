"""What runs in pods and clients: images (which built-in server a container gets), server
(one thread serving every pod's sockets), commands (containers that are processes)."""
