"""The task definitions: OCP's OBProxy tasks as flows of subtasks, each with execute/rollback."""
