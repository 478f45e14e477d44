"""The MOSAIC virtual machine: config, tokenizer, instruction set, model and state."""
from engine.vm.config import ConfigError, ModelConfig
from engine.vm.isa import Opcode
from engine.vm.model import ForwardOutput, MosaicLM, StepOutput, Teacher
from engine.vm.state import StateError, VMState
from engine.vm.tokenizer import ByteTokenizer

__all__ = ["ModelConfig", "ConfigError", "MosaicLM", "VMState", "StateError", "Opcode", "ByteTokenizer",
           "Teacher", "ForwardOutput", "StepOutput"]
