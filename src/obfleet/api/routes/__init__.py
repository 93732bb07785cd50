"""One router per OCP module."""
