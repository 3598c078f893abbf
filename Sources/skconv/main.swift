import ArgumentParser
import SKCore
import SKCLI

SKConv.mainWithExitTable()
